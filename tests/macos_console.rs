//! The scripted serial console of the real-kernel tests (`macos_guest::Console`),
//! checked where it can run anywhere: against a fake guest that plays getty, login
//! and a shell (each line it receives is echoed, as a terminal does, then run by
//! the host's `sh`). Nothing here boots a virtual machine.
#![cfg(any(target_os = "macos", arcbox_vz_sim))]

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator, which the crate needs there

mod macos_guest;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::Duration;

use macos_guest::Console;

/// Plays PUI PUI Linux's console on `stream`: boot messages, a getty, `login`
/// (asking for `password` if there is one) and a shell that echoes each line and
/// runs it with `sh -c`.
fn fake_guest(stream: UnixStream, password: Option<&'static str>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        let mut read_line = move || {
            let mut line = String::new();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
            }
        };
        // The issue file of older builds says "Login with root and no password."
        write!(
            out,
            "[    0.000000] Linux version 6.11.5 (fake)\r\nLogin with root and no password.\r\n\r\nlocalhost login: "
        )
        .unwrap();
        let Some(user) = read_line() else { return };
        write!(out, "{user}\r\n").unwrap();
        if let Some(expected) = password {
            write!(out, "Password: ").unwrap();
            let Some(given) = read_line() else { return };
            write!(out, "\r\n").unwrap();
            if user != "root" || given != expected {
                write!(out, "Login incorrect\r\nlocalhost login: ").unwrap();
                return;
            }
        }
        write!(out, "~ # ").unwrap();
        while let Some(line) = read_line() {
            write!(out, "{line}\r\n").unwrap(); // the terminal's echo
            let ran = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .output()
                .unwrap();
            let mut shown = ran.stdout;
            shown.extend_from_slice(&ran.stderr);
            let shown = String::from_utf8_lossy(&shown).replace('\n', "\r\n");
            write!(out, "{shown}~ # ").unwrap();
        }
    })
}

#[test]
fn logs_in_with_a_password_and_runs_commands() {
    let (mut console, guest_end) = Console::new();
    let guest = fake_guest(guest_end, Some("passwd"));
    macos_guest::check(console.login());

    let (status, shown) = macos_guest::check(console.run("echo hello; echo world"));
    assert_eq!(status, 0);
    assert!(shown.contains("hello\r\nworld\r\n"), "{shown:?}");
    assert_eq!(macos_guest::check(console.run("(exit 3)")).0, 3);
    let error = console.run_ok("false").unwrap_err();
    assert!(error.contains("`false` exited with 1"), "{error}");
    // A command that is still running: start it, then finish it.
    let id = macos_guest::check(console.start("sleep 0.2; echo late"));
    let (status, shown) = macos_guest::check(console.finish(id));
    assert_eq!(status, 0);
    assert!(shown.contains("late\r\n"), "{shown:?}");

    drop(console); // closes the host end: the fake guest reads end-of-file
    guest.join().unwrap();
}

#[test]
fn logs_in_without_a_password() {
    let (mut console, guest_end) = Console::new();
    let guest = fake_guest(guest_end, None);
    macos_guest::check(console.login());
    assert_eq!(
        macos_guest::check(console.run_ok("echo no-password"))
            .matches("no-password")
            .count(),
        2, // the echoed command line, then its output
    );
    drop(console);
    guest.join().unwrap();
}

#[test]
fn a_wrong_password_fails_with_the_console_output() {
    let (mut console, guest_end) = Console::new();
    let guest = fake_guest(guest_end, Some("something else"));
    let error = console.login().unwrap_err();
    assert!(error.contains("Login incorrect"), "{error}");
    drop(console);
    guest.join().unwrap();
}

#[test]
fn waiting_for_text_that_never_comes_times_out_and_shows_the_output() {
    let (mut console, mut guest_end) = Console::new();
    guest_end
        .write_all(b"booting\r\nsomething else\r\n")
        .unwrap();
    let error = console
        .wait_for(&["login:"], Duration::from_millis(300))
        .unwrap_err();
    assert!(error.contains("something else"), "{error}");
    // Text already matched is not matched again.
    assert_eq!(
        console.wait_for(&["else", "booting"], Duration::from_secs(5)),
        Ok(1)
    );
    assert_eq!(
        console.wait_for(&["else", "booting"], Duration::from_secs(5)),
        Ok(0)
    );
    assert!(
        console
            .wait_for(&["booting"], Duration::from_millis(100))
            .is_err()
    );
}
