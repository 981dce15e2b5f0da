//! Builds the Linux simulator: the objc_msgSend trampoline, the runtime shims, the
//! dispatch shim, the clang block probes and the fake Virtualization classes, into
//! one static archive linked whole into every test binary.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &str = "clang libblocksruntime-dev libgnustep-base-dev";

fn fail(what: &str) -> ! {
    panic!(
        "\n\narcbox-vz-sim: {what}\n\
         The Linux simulator needs Debian/Ubuntu packages:\n    \
         sudo apt-get install -y --no-install-recommends {PACKAGES}\n\n"
    );
}

fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {cmd:?}: {e}")));
    if !out.status.success() {
        panic!(
            "arcbox-vz-sim: {cmd:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("tool output is UTF-8")
}

fn main() {
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64")
    {
        // The trampoline is x86_64 assembly; elsewhere the crate is empty.
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let csrc = manifest.join("csrc");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=vz-api.tsv");
    write_api_table(&manifest.join("vz-api.tsv"), &out.join("sim_api_table.h"));

    for header in [
        "/usr/include/Block.h",
        "/usr/include/GNUstep/Foundation/Foundation.h",
    ] {
        if !Path::new(header).exists() {
            fail(&format!("{header} is missing"));
        }
    }
    let gcc_include = output(Command::new("gcc").arg("-print-file-name=include"));
    let objc_flags = output(Command::new("gnustep-config").arg("--objc-flags"));

    // GNUstep's headers include <objc/blocks_runtime.h>; point it at compiler-rt's.
    let shim_include = out.join("include");
    std::fs::create_dir_all(shim_include.join("objc")).unwrap();
    std::fs::write(
        shim_include.join("objc/blocks_runtime.h"),
        "#include <Block.h>\n",
    )
    .unwrap();

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&csrc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("c" | "m" | "S")
            )
        })
        .collect();
    sources.sort();

    let mut objects = Vec::new();
    for src in &sources {
        let obj = out.join(src.file_name().unwrap()).with_extension("o");
        let mut cmd = Command::new("clang");
        cmd.args([
            "-c",
            "-fPIC",
            "-O1",
            "-gdwarf-4",
            "-Wall",
            "-Werror",
            "-fblocks",
        ])
        .arg(format!("-I{}", csrc.display()))
        .arg(format!("-I{}", shim_include.display()))
        .arg(format!("-I{}", out.display()));
        if src.extension().unwrap() == "m" {
            cmd.arg("-fobjc-runtime=gcc")
                .args(["-idirafter", gcc_include.trim()])
                .args(
                    objc_flags
                        .split_whitespace()
                        .filter(|f| !matches!(*f, "-MMD" | "-MP" | "-g" | "-O2" | "-Wall")),
                )
                // GNUstep headers trip these under clang; they are not our code.
                .arg("-Wno-deprecated-declarations");
        }
        cmd.arg(src).arg("-o").arg(&obj);
        output(&mut cmd);
        objects.push(obj);
    }

    let archive = out.join("libarcbox_vz_sim.a");
    let _ = std::fs::remove_file(&archive);
    output(Command::new("ar").arg("crs").arg(&archive).args(&objects));

    println!("cargo:rustc-link-search=native={}", out.display());
    // Order matters: compiler-rt's BlocksRuntime must be bound before GNUstep Base,
    // which exports a broken _Block_copy of its own (see the self-check in
    // runtime_shims.m).
    println!("cargo:rustc-link-lib=static:+whole-archive=arcbox_vz_sim");
    println!("cargo:rustc-link-lib=dylib=BlocksRuntime");
    println!("cargo:rustc-link-lib=dylib=gnustep-base");
    println!("cargo:rustc-link-lib=dylib=objc");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=pthread");
}

/// The columns of vz-api.tsv the simulator reads, in the order it expects them.
const API_COLUMNS: [&str; 6] = [
    "class",
    "kind",
    "selector",
    "argument_types",
    "return_type",
    "macos_introduced",
];

/// `"13.0"` as 1300, `"12.3"` as 1203.
fn release(text: &str) -> Option<u32> {
    let (major, minor) = text.split_once('.')?;
    Some(major.parse::<u32>().ok()? * 100 + minor.parse::<u32>().ok()?)
}

/// Generates `sim_api_table.h` from the committed copy of vz-api.tsv: every VZ class,
/// method and property with the macOS release that introduced it. sim_versions.m hides
/// those newer than the release the simulator plays (ARCBOX_VZ_SIM_MACOS).
fn write_api_table(tsv: &Path, header: &Path) {
    let text = std::fs::read_to_string(tsv).unwrap_or_else(|e| panic!("{}: {e}", tsv.display()));
    let mut lines = text.lines();
    let columns: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    assert!(
        columns.len() > API_COLUMNS.len() && columns[..API_COLUMNS.len()] == API_COLUMNS,
        "{}: the header must start with {API_COLUMNS:?}",
        tsv.display()
    );
    let mut rows = String::new();
    for (number, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (class, kind, selector, version) = (fields[0], fields[1], fields[2], fields[5]);
        let version = release(version)
            .unwrap_or_else(|| panic!("{}:{}: bad release {version:?}", tsv.display(), number + 2));
        let kind = match kind {
            "class-info" => 'c',
            "instance-method" => 'i',
            "class-method" => 'k',
            "property" => 'p',
            "property-setter" => 's',
            _ => continue,
        };
        if !class.starts_with("VZ") {
            continue;
        }
        let selector = if kind == 'c' {
            "NULL".to_string()
        } else {
            assert!(
                !selector.contains([' ', '"', '\\']),
                "{}:{}: one selector per row",
                tsv.display(),
                number + 2
            );
            format!("\"{selector}\"")
        };
        rows.push_str(&format!(
            "    {{ \"{class}\", '{kind}', {selector}, {version} }},\n"
        ));
    }
    let out = format!(
        "/* Generated by build.rs from vz-api.tsv: do not edit. */\n\
         static const struct sim_api_row sim_api_rows[] = {{\n{rows}}};\n"
    );
    std::fs::write(header, out).unwrap();
}
