//! Directory sharing (virtiofs) in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use arcbox_vz::{
    DirectoryShare, MultipleDirectoryShare, SharedDirectory, SingleDirectoryShare, VZError,
    VirtioFileSystemDeviceConfiguration,
};
use common::{TempDir, assert_unsupported, invalid_argument, macos, minimal_config, sim, since};

fn subdir(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::create_dir_all(&path).unwrap();
    path
}

#[test]
fn the_documented_snippet_works() {
    sim::scenario(|| {
        let dir = TempDir::new("snippet");
        let host = subdir(&dir, "host");
        let mut config = minimal_config(&dir);
        let mut run = || -> Result<(), VZError> {
            let share = SharedDirectory::new(&host, false)?; // read_only = false
            let dir_share = SingleDirectoryShare::new(share); // infallible
            let fs_device = VirtioFileSystemDeviceConfiguration::new("myshare", dir_share)?;
            config.set_directory_sharing_devices(vec![fs_device]);
            Ok(())
        };
        if since("12.0", run()).is_none() {
            // Nothing was set, and the configuration is still valid.
            assert!(config.directory_sharing_devices().is_empty());
            config.validate().unwrap();
            return;
        }
        assert_eq!(config.directory_sharing_devices().len(), 1);
        assert_eq!(config.directory_sharing_devices()[0].tag(), "myshare");
        config.validate().unwrap();
    });
}

#[test]
fn shared_and_single_directory_round_trip() {
    sim::scenario(|| {
        let dir = TempDir::new("single");
        let host = subdir(&dir, "data");
        let Some(rw) = since("12.0", SharedDirectory::new(&host, false)) else {
            return;
        };
        assert_eq!(rw.path(), host);
        assert!(!rw.is_read_only());
        let ro = SharedDirectory::new(&host, true).unwrap();
        assert!(ro.is_read_only());

        // A relative path comes back absolute.
        let cwd = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let relative = SharedDirectory::new("data", false);
        std::env::set_current_dir(cwd).unwrap();
        assert_eq!(relative.unwrap().path(), host);

        let single = SingleDirectoryShare::new(ro.clone());
        let back = single.directory();
        assert_eq!(back.path(), host);
        assert!(back.is_read_only());

        let mut fs = VirtioFileSystemDeviceConfiguration::new("data", single).unwrap();
        assert_eq!(fs.tag(), "data");
        match fs.share() {
            Some(DirectoryShare::Single(s)) => assert_eq!(s.directory().path(), host),
            other => panic!("unexpected share {other:?}"),
        }
        fs.set_tag("renamed").unwrap();
        assert_eq!(fs.tag(), "renamed");
        fs.set_share(None);
        assert!(fs.share().is_none());
        fs.set_share(Some(SingleDirectoryShare::new(rw).into()));
        assert!(matches!(fs.share(), Some(DirectoryShare::Single(_))));
    });
}

#[test]
fn multiple_directory_share_round_trips() {
    sim::scenario(|| {
        let dir = TempDir::new("multiple");
        let a = subdir(&dir, "a");
        let b = subdir(&dir, "b");
        let Some(src) = since("12.0", SharedDirectory::new(&a, false)) else {
            assert_unsupported(
                "12.0",
                MultipleDirectoryShare::new(Vec::<(String, SharedDirectory)>::new()),
            );
            return;
        };
        let share = MultipleDirectoryShare::new([
            ("src", src),
            ("docs", SharedDirectory::new(&b, true).unwrap()),
        ])
        .unwrap();
        let dirs = share.directories();
        let summary: Vec<(&str, PathBuf, bool)> = dirs
            .iter()
            .map(|(name, d)| (name.as_str(), d.path(), d.is_read_only()))
            .collect();
        assert_eq!(
            summary,
            [("docs", b.clone(), true), ("src", a.clone(), false)]
        );

        // Empty is fine: a mount with nothing in it.
        let empty = MultipleDirectoryShare::new(Vec::<(String, SharedDirectory)>::new()).unwrap();
        assert!(empty.directories().is_empty());

        let fs = VirtioFileSystemDeviceConfiguration::new("multi", share.clone()).unwrap();
        match fs.share() {
            Some(DirectoryShare::Multiple(m)) => assert_eq!(m.directories().len(), 2),
            other => panic!("unexpected share {other:?}"),
        }

        // The share is immutable: "building on it" makes a new one.
        let mut entries = share.directories();
        entries.push(("more".into(), SharedDirectory::new(&a, true).unwrap()));
        let bigger = MultipleDirectoryShare::new(entries).unwrap();
        assert_eq!(bigger.directories().len(), 3);
        assert_eq!(share.directories().len(), 2);
    });
}

#[test]
fn canonicalized_names_are_valid_names() {
    sim::scenario(|| {
        let dir = TempDir::new("canon");
        if !macos("12.0") {
            // No class to ask: no name can be made.
            for name in ["ok", "a/b", ""] {
                assert_eq!(MultipleDirectoryShare::canonicalized_name(name), None);
            }
            return;
        }
        assert_eq!(
            MultipleDirectoryShare::canonicalized_name("ok").as_deref(),
            Some("ok")
        );
        let canon = MultipleDirectoryShare::canonicalized_name("a/b").unwrap();
        assert!(!canon.contains('/'), "{canon}");
        assert_eq!(MultipleDirectoryShare::canonicalized_name(""), None);
        assert_eq!(MultipleDirectoryShare::canonicalized_name("a\0b"), None);
        let long = "é".repeat(200);
        let canon = MultipleDirectoryShare::canonicalized_name(&long).unwrap();
        assert!(canon.len() <= 255, "{}", canon.len());
        // A canonical name is accepted by the share.
        let host = subdir(&dir, "x");
        MultipleDirectoryShare::new([(canon, SharedDirectory::new(&host, false).unwrap())])
            .unwrap();
    });
}

#[test]
fn tags_follow_apples_limit() {
    sim::scenario(|| {
        let dir = TempDir::new("tags");
        let host = subdir(&dir, "h");
        assert_eq!(VirtioFileSystemDeviceConfiguration::MAX_TAG_LEN, 35);
        let automount = since(
            "13.0",
            VirtioFileSystemDeviceConfiguration::macos_guest_automount_tag(),
        );
        if let Some(automount) = &automount {
            assert_eq!(automount, "com.apple.virtio-fs.automount");
        }
        if since("12.0", SharedDirectory::new(&host, false)).is_none() {
            return;
        }
        let share = || SingleDirectoryShare::new(SharedDirectory::new(&host, false).unwrap());
        // 35 bytes is the longest valid tag ("less than 36 bytes"), in ASCII and UTF-8.
        let longest = "t".repeat(35);
        assert_eq!(
            VirtioFileSystemDeviceConfiguration::new(&longest, share())
                .unwrap()
                .tag(),
            longest
        );
        let utf8 = format!("{}a", "é".repeat(17)); // 35 bytes, 18 characters
        assert_eq!(utf8.len(), 35);
        VirtioFileSystemDeviceConfiguration::new(&utf8, share()).unwrap();
        if let Some(automount) = automount {
            VirtioFileSystemDeviceConfiguration::new(&automount, share()).unwrap();
        }
    });
}

#[test]
fn bad_inputs_are_refused_before_the_framework_sees_them() {
    sim::scenario(|| {
        let dir = TempDir::new("bad-sharing");
        let host = subdir(&dir, "h");
        let file = dir.file("regular", b"not a directory");

        // Shared directory paths.
        let cases: Vec<(PathBuf, &str)> = vec![
            (dir.path().join("missing"), "does not exist"),
            (file.clone(), "is not a directory"),
            (PathBuf::from("/tmp/a\0b"), "NUL"),
            (PathBuf::from(OsStr::from_bytes(b"/tmp/\xff")), "UTF-8"),
            (PathBuf::new(), "empty"),
        ];
        if !macos("12.0") {
            // Without the class, every path is refused as unsupported.
            for (path, _) in cases {
                assert_unsupported("12.0", SharedDirectory::new(&path, false));
            }
            assert_unsupported("12.0", SharedDirectory::new(&host, false));
            return;
        }
        for (path, why) in cases {
            let (argument, reason) =
                invalid_argument(SharedDirectory::new(&path, false).unwrap_err());
            assert_eq!(argument, "shared directory path", "{path:?}");
            assert!(reason.contains(why), "{path:?}: {reason}");
        }

        // Tags: checked in Rust, then by +validateTag:error:, before initWithTag:
        // (which raises in the fake, so reaching it would abort this test).
        let share = || SingleDirectoryShare::new(SharedDirectory::new(&host, false).unwrap());
        let tag36 = "t".repeat(36);
        let tag37 = "t".repeat(37);
        let utf8_36 = "é".repeat(18);
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            (&tag36, "36 bytes"),
            (&tag37, "37 bytes"),
            (&utf8_36, "36 bytes"),
            ("tag\0", "NUL"),
        ];
        for (tag, why) in cases {
            let (argument, reason) = invalid_argument(
                VirtioFileSystemDeviceConfiguration::new(tag, share()).unwrap_err(),
            );
            assert_eq!(argument, "directory sharing tag", "{tag:?}");
            assert!(reason.contains(why), "{tag:?}: {reason}");
        }
        let mut fs = VirtioFileSystemDeviceConfiguration::new("good", share()).unwrap();
        let (argument, _) = invalid_argument(fs.set_tag(&tag36).unwrap_err());
        assert_eq!(argument, "directory sharing tag");
        assert_eq!(fs.tag(), "good", "a refused tag leaves the old one");

        // Share names: checked in Rust, then by +validateName:error:, before
        // initWithDirectories: (which raises in the fake).
        let d = || SharedDirectory::new(&host, false).unwrap();
        let too_long = "n".repeat(256);
        let cases: Vec<(Vec<(&str, SharedDirectory)>, &str)> = vec![
            (vec![("", d())], "empty"),
            (vec![("a/b", d())], "'/'"),
            (vec![("a\0b", d())], "NUL"),
            (
                vec![("same", d()), ("other", d()), ("same", d())],
                "more than one",
            ),
            (vec![("..", d())], "not a valid name"),
            (vec![(".", d())], "not a valid name"),
            (vec![(&too_long, d())], "not a valid name"),
        ];
        for (entries, why) in cases {
            let names: Vec<String> = entries
                .iter()
                .map(|(n, _)| n.escape_debug().to_string())
                .collect();
            let (argument, reason) =
                invalid_argument(MultipleDirectoryShare::new(entries).unwrap_err());
            assert_eq!(argument, "directory share name", "{names:?}");
            assert!(reason.contains(why), "{names:?}: {reason}");
        }
    });
}

#[test]
fn configurations_with_shares_validate_and_duplicate_tags_fail() {
    sim::scenario(|| {
        let dir = TempDir::new("validate-sharing");
        let a = subdir(&dir, "a");
        let b = subdir(&dir, "b");
        if since("12.0", SharedDirectory::new(&a, true)).is_none() {
            // An empty list is never sent, so it is fine on any macOS.
            let mut config = minimal_config(&dir);
            config.set_directory_sharing_devices(Vec::new());
            config.validate().unwrap();
            drop(config.build().unwrap());
            return;
        }
        let single = |p: &Path, tag: &str| {
            VirtioFileSystemDeviceConfiguration::new(
                tag,
                SingleDirectoryShare::new(SharedDirectory::new(p, true).unwrap()),
            )
            .unwrap()
        };
        let multi = VirtioFileSystemDeviceConfiguration::new(
            "multi",
            MultipleDirectoryShare::new([("a", SharedDirectory::new(&a, false).unwrap())]).unwrap(),
        )
        .unwrap();

        let mut config = minimal_config(&dir);
        config.set_directory_sharing_devices(vec![single(&a, "one"), single(&b, "two"), multi]);
        config.validate().unwrap();
        drop(config.build().unwrap());

        // Two devices with one tag: the framework refuses the configuration.
        let mut config = minimal_config(&dir);
        config.set_directory_sharing_devices(vec![single(&a, "same"), single(&b, "same")]);
        match config.validate() {
            Err(VZError::InvalidConfiguration(e)) => {
                assert!(e.is_vz(2), "{e}");
                assert!(e.description.contains("same"), "{e}");
            }
            other => panic!("expected InvalidConfiguration, got {other:?}"),
        }
    });
}
