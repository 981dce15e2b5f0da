//! The shape of `src/`: its import graph has no cycle, the raw layer (`ffi/`) and the
//! errors stay at the bottom of it, and no file is over 1,000 lines. And the shape of
//! the package: the library has no dependencies and no build script.
//!
//! The test reads the sources; it does not use the crate, so it runs the same under
//! every cfg and on every target.
//!
//! # The graph
//!
//! A node is a file of `src/`. There is an edge from file A to file B when A names an
//! item defined in B, through a path that starts with `crate::` (or `$crate::` in a
//! macro), `super::`, `self::` or the name of a child module:
//!
//! - in a `use` declaration, grouped (`use a::{b, c::d}`, over many lines) or not;
//!   `self` in a group names the module itself;
//! - inline in code (`crate::configuration::foo(..)`, `super::runtime::Id`).
//!
//! Paths are resolved the way the compiler does, as far as a text reader can:
//! each segment is looked up in the module reached so far, which is a child module
//! (`mod x;` or an inline `mod x { .. }`), an item the module's file defines (`fn`,
//! `struct`, `enum`, `trait`, `type`, `const`, `static`, `union`, `macro_rules!`), a
//! name the file imports or re-exports (`use ..::Item`, `use .. as Item`, followed to
//! the file that defines it), or a name one of its glob imports (`use x::*`) brings in.
//! The edge goes to the file that *defines* the item: a re-export in a `mod.rs` is
//! looked through, not stopped at. Only a name found nowhere is charged to the file of
//! the module it was looked up in (a `mod.rs`, usually). A path that names a module
//! (`use crate::ffi::foundation;`, `{self, ..}`, `use super::*`) is an edge to that
//! module's file.
//!
//! Not edges:
//!
//! - `mod x;` declarations: they build the module tree, they do not use anything;
//! - re-exports, `pub use` and `pub(..) use`, that the file does not use itself: a
//!   `mod.rs` that only declares and re-exports its submodules is the root of its
//!   folder, not a dependency of it (and of its users). A re-export whose name the
//!   file also uses in its own code is an edge like any other import;
//! - a file's uses of itself (an inline `mod tests { use super::*; }`);
//! - paths into other crates (`std::`, `libc::`, `::core::`), and text in comments
//!   and string literals.
//!
//! `#[cfg]` is ignored: every file is read, test modules and benchmarks included, as
//! the layering should not depend on the build.
//!
//! # The layers
//!
//! No cycle is not yet an order: `the_raw_layer_and_the_errors_stay_at_the_bottom`
//! also holds `ffi/` to using only itself, `error.rs` and `error_code.rs`, and those
//! two to importing only files that import nothing (see "Map of the crate" in
//! `src/lib.rs` for the rest of the order).
//!
//! To check another tree, like an older commit's (`git archive COMMIT src | tar -x -C
//! /tmp/old`), set `ARCBOX_VZ_STRUCTURE_SRC=/tmp/old/src`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// No file of `src/` may be longer than this.
const MAX_LINES: usize = 1000;

#[test]
fn import_graph_has_no_cycle() {
    let crate_ = Crate::read(&src_dir());
    let graph = crate_.graph();
    assert!(
        graph.edges.values().map(BTreeSet::len).sum::<usize>() > 100,
        "the reader found too few edges to be working: {graph:#?}"
    );
    let cycles = cycles(&graph.edges);
    if !cycles.is_empty() {
        let mut message = format!(
            "the import graph of src/ has {} cycle(s) (A → B: A names an item defined in B):\n",
            cycles.len()
        );
        for cycle in &cycles {
            message.push_str("  ");
            message.push_str(&cycle.join(" → "));
            message.push('\n');
            for pair in cycle.windows(2) {
                for via in &graph.via[&(pair[0].clone(), pair[1].clone())] {
                    let _ = writeln!(message, "      {} → {}: {via}", pair[0], pair[1]);
                }
            }
        }
        panic!("{message}");
    }
}

/// The layers the cycle test cannot see: the raw layer, `ffi/`, depends on nothing
/// above it (only on `error.rs` and `error_code.rs`, which everyone uses), and those
/// two import nothing but leaves (files that import nothing of the crate).
///
/// One exception: `ffi/tests.rs`, the raw layer's own tests (`cfg(test)`), awaits
/// completion handlers through `bridge.rs`, as the layers above do.
#[test]
fn the_raw_layer_and_the_errors_stay_at_the_bottom() {
    let graph = Crate::read(&src_dir()).graph();
    let errors = ["src/error.rs", "src/error_code.rs"];
    let mut wrong = Vec::new();
    for (from, targets) in &graph.edges {
        for to in targets {
            let bad = if from == "src/ffi/tests.rs" {
                to != "src/bridge.rs"
                    && !to.starts_with("src/ffi/")
                    && !errors.contains(&to.as_str())
            } else if from.starts_with("src/ffi/") {
                !to.starts_with("src/ffi/") && !errors.contains(&to.as_str())
            } else if errors.contains(&from.as_str()) {
                !errors.contains(&to.as_str()) && !graph.edges[to].is_empty()
            } else {
                false
            };
            if bad {
                for via in &graph.via[&(from.clone(), to.clone())] {
                    wrong.push(format!("  {from} → {to}: {via}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges out of the bottom layers (src/ffi/ may use only itself and the errors; \
         the errors only leaves):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_file_over_the_line_limit() {
    let mut long = Vec::new();
    for path in rust_files(&src_dir()) {
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        if lines > MAX_LINES {
            long.push(format!("{} ({lines} lines)", relative(&path)));
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines: {}; split them",
        long.join(", ")
    );
}

/// The reader on small made-up sources, so that it can be seen to fail.
/// The library depends on nothing, not even `libc` (`src/ffi/sys.rs` declares the few
/// C calls it makes), and has no build script: no `[dependencies]` or
/// `[build-dependencies]` entries, for any target, and no `build =` key.
/// Dev-dependencies are fine.
#[test]
fn the_library_has_no_dependencies_and_no_build_script() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read Cargo.toml");
    let offending = dependency_entries(&text);
    assert!(
        offending.is_empty(),
        "the library must have no dependencies and no build script; Cargo.toml has:\n{}",
        offending.join("\n")
    );
    // The check itself: it finds each kind of entry it is meant to refuse.
    let bad = "[package]\nname = \"x\"\nbuild = \"build.rs\"\n\n[dependencies]\nlibc = \"0.2\"\n\
               [target.'cfg(unix)'.dependencies]\nfoo = \"1\"\n[build-dependencies]\ncc = \"1\"\n\
               [dev-dependencies]\ntokio = \"1\"\n[dependencies.bar]\nversion = \"1\"\n";
    assert_eq!(
        dependency_entries(bad),
        [
            "[package] build = \"build.rs\"",
            "[dependencies] libc = \"0.2\"",
            "[target.'cfg(unix)'.dependencies] foo = \"1\"",
            "[build-dependencies] cc = \"1\"",
            "[dependencies.bar]",
        ]
    );
}

/// The lines of a manifest that give the library a dependency or a build script.
fn dependency_entries(manifest: &str) -> Vec<String> {
    let mut table = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            table = line.to_owned();
            let name = line.trim_matches(|c| c == '[' || c == ']');
            // `[dependencies.foo]` and `[target.x.dependencies.foo]` name one crate.
            if name.starts_with("dependencies.")
                || name.starts_with("build-dependencies.")
                || (name.starts_with("target.")
                    && (name.contains(".dependencies.") || name.contains(".build-dependencies.")))
            {
                found.push(line.to_owned());
            }
            continue;
        }
        let name = table.trim_matches(|c| c == '[' || c == ']');
        let is_dependency_table = name == "dependencies"
            || name == "build-dependencies"
            || (name.starts_with("target.")
                && (name.ends_with(".dependencies") || name.ends_with(".build-dependencies")));
        let is_build_key =
            name == "package" && line.split('=').next().map(str::trim) == Some("build");
        if is_dependency_table || is_build_key {
            found.push(format!("{table} {line}"));
        }
    }
    found
}

#[test]
fn the_reader_finds_what_it_should() {
    let crate_ = Crate::from_sources(&[
        (
            "lib.rs",
            "mod a; mod b; pub mod c; pub use c::*; \
             pub(crate) use b::Beta as Renamed;",
        ),
        (
            "a.rs",
            "use crate::c::{self, deep::{Gamma,\n  Delta}};\n\
             // use crate::b::Beta;  (a comment)\n\
             const S: &str = \"crate::b::Beta\";\n\
             fn f<'a>(x: &'a str) -> char { let _ = crate::Renamed::new(); 'x' }",
        ),
        ("b.rs", "pub struct Beta; use super::c::Epsilon;"),
        (
            "c/mod.rs",
            "mod deep; pub use deep::{Gamma, Delta}; pub use self::deep::*;",
        ),
        (
            "c/deep.rs",
            "pub struct Gamma; pub enum Delta {} pub struct Epsilon; \
             mod tests { use super::*; use crate::a; }",
        ),
    ]);
    let graph = crate_.graph();
    let edges = |from: &str| graph.edges[from].iter().cloned().collect::<Vec<_>>();
    assert_eq!(edges("lib.rs"), Vec::<String>::new());
    assert_eq!(edges("a.rs"), ["b.rs", "c/deep.rs", "c/mod.rs"]);
    assert_eq!(edges("b.rs"), ["c/deep.rs"]);
    assert_eq!(edges("c/mod.rs"), Vec::<String>::new());
    assert_eq!(edges("c/deep.rs"), ["a.rs"]);
    assert_eq!(
        cycles(&graph.edges),
        [
            vec!["a.rs", "c/deep.rs", "a.rs"],
            vec!["b.rs", "c/deep.rs", "a.rs", "b.rs"]
        ],
        "{graph:#?}"
    );
}

/// `src/`, or the directory in `$ARCBOX_VZ_STRUCTURE_SRC` (to check another tree,
/// like an older commit's `src/` from `git archive`).
fn src_dir() -> PathBuf {
    match std::env::var_os("ARCBOX_VZ_STRUCTURE_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

fn relative(path: &Path) -> String {
    let path = path.strip_prefix(src_dir()).unwrap_or(path);
    format!("src/{}", path.to_string_lossy())
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

// ---------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// The tokens of Rust source, without comments, string, char and number literals,
/// and lifetimes (a text reader needs no more).
fn tokens(source: &str) -> Vec<Tok> {
    let s: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'b' || c == 'c') && next == Some('"')) {
            i += if c == '"' { 1 } else { 2 };
            while i < s.len() && s[i] != '"' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if (c == 'r' || ((c == 'b' || c == 'c') && next == Some('r')))
            && matches!(s.get(i + if c == 'r' { 1 } else { 2 }), Some('"' | '#'))
            && is_raw_string(&s, i + if c == 'r' { 1 } else { 2 })
        {
            i += if c == 'r' { 1 } else { 2 };
            let mut hashes = 0;
            while s[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            loop {
                if s[i] == '"' && (1..=hashes).all(|k| s.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            if next == Some('\\') {
                i += 3; // the quote, the backslash and the escaped character
                while i < s.len() && s[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if s.get(i + 2) == Some(&'\'') {
                i += 3; // 'x'
            } else {
                i += 1; // a lifetime: skip the quote, its name is a harmless identifier
                while i < s.len() && ident_char(s[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < s.len()
                && (ident_char(s[i])
                    || s[i] == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit))
            {
                i += 1;
            }
        } else if ident_char(c) {
            let start = i;
            while i < s.len() && ident_char(s[i]) {
                i += 1;
            }
            let word: String = s[start..i].iter().collect();
            out.push(Tok::Ident(
                word.strip_prefix("r#").unwrap_or(&word).to_owned(),
            ));
        } else if c == ':' && next == Some(':') {
            out.push(Tok::PathSep);
            i += 2;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// Whether `r`, `br` or `cr` followed by `#`s and a quote at `at` opens a raw string.
fn is_raw_string(s: &[char], mut at: usize) -> bool {
    while s.get(at) == Some(&'#') {
        at += 1;
    }
    s.get(at) == Some(&'"')
}

fn ident(tok: Option<&Tok>) -> Option<&str> {
    match tok {
        Some(Tok::Ident(word)) => Some(word),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Modules and the names they hold

/// A module path from the crate root: `["ffi", "runtime"]`.
type ModPath = Vec<String>;

/// One imported path, from a `use` declaration.
#[derive(Clone, Debug)]
struct Import {
    /// The path as written (`crate::..`, `super::..`, a child module's name first, or
    /// another crate's); for a glob, of the module.
    path: ModPath,
    glob: bool,
    /// The name it is known by in the importing module (`None` for a glob or `self`).
    name: Option<String>,
}

#[derive(Debug, Default)]
struct Module {
    /// The file the module lives in (an inline module lives in its parent's file).
    file: String,
    children: BTreeSet<String>,
    /// Names the module's file defines (at any depth: enough to find an item).
    defines: BTreeSet<String>,
    imports: Vec<Import>,
}

/// A path found in a file, to resolve once every module is known.
#[derive(Debug)]
struct Reference {
    from: String,
    /// The module the path is written in.
    module: ModPath,
    /// As written.
    path: ModPath,
    /// For a re-export: the name, which makes it an edge only if the file uses it.
    reexported: Option<String>,
    text: String,
}

#[derive(Debug, Default)]
struct Crate {
    modules: BTreeMap<ModPath, Module>,
    references: Vec<Reference>,
    /// Every identifier used in each file outside its `use` declarations.
    used_names: HashMap<String, BTreeSet<String>>,
}

/// The edges between files, and the paths behind each (for the failure message).
#[derive(Debug, Default)]
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
    via: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let sources: Vec<(String, String)> = rust_files(src)
            .iter()
            .map(|p| {
                let name = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
                (name, fs::read_to_string(p).unwrap())
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        let mut crate_ = Crate::from_sources(&borrowed);
        // Name files by their path in the repository in messages.
        let rename = |f: &str| format!("src/{f}");
        for module in crate_.modules.values_mut() {
            module.file = rename(&module.file);
        }
        for reference in &mut crate_.references {
            reference.from = rename(&reference.from);
        }
        crate_.used_names = crate_
            .used_names
            .drain()
            .map(|(f, n)| (rename(&f), n))
            .collect();
        crate_
    }

    /// `sources`: (path under `src/`, text).
    fn from_sources(sources: &[(&str, &str)]) -> Crate {
        let mut crate_ = Crate::default();
        for (file, text) in sources {
            crate_.read_file(file, &tokens(text));
        }
        crate_
    }

    fn read_file(&mut self, file: &str, toks: &[Tok]) {
        let module_of_file: ModPath = {
            let stem = file.strip_suffix(".rs").unwrap();
            let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            parts
        };
        self.modules.entry(module_of_file.clone()).or_default().file = file.to_owned();
        let used = self.used_names.entry(file.to_owned()).or_default();
        // Inline modules: (path, brace depth their body opened at).
        let mut stack: Vec<(ModPath, usize)> = vec![(module_of_file, 0)];
        let mut depth = 0;
        let mut i = 0;
        while i < toks.len() {
            let current = stack.last().unwrap().0.clone();
            match &toks[i] {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    if stack.len() > 1 && stack.last().unwrap().1 == depth {
                        stack.pop();
                    }
                    depth = depth.checked_sub(1).unwrap_or_else(|| {
                        panic!("{file}: unbalanced braces (a gap in this reader's lexer)")
                    });
                }
                // (`use<..>` is a precise-capturing bound, not a declaration.)
                Tok::Ident(word) if word == "use" && toks.get(i + 1) != Some(&Tok::Punct('<')) => {
                    let reexport = is_public(toks, i);
                    let end = (i..toks.len())
                        .find(|&j| toks[j] == Tok::Punct(';'))
                        .unwrap_or(toks.len());
                    let mut trees = Vec::new();
                    use_tree(&toks[i + 1..end], &[], &mut trees);
                    for (path, glob, name) in trees {
                        self.modules
                            .entry(current.clone())
                            .or_default()
                            .imports
                            .push(Import {
                                path: path.clone(),
                                glob,
                                name: name.clone(),
                            });
                        self.references.push(Reference {
                            from: file.to_owned(),
                            text: format!(
                                "use {}{}",
                                path.join("::"),
                                if glob { "::*" } else { "" }
                            ),
                            module: current.clone(),
                            path,
                            reexported: if reexport {
                                name.or(Some(String::new()))
                            } else {
                                None
                            },
                        });
                    }
                    i = end;
                    continue;
                }
                Tok::Ident(word) if word == "mod" => {
                    if let Some(name) = ident(toks.get(i + 1)) {
                        let child: ModPath =
                            current.iter().cloned().chain([name.to_owned()]).collect();
                        self.modules
                            .entry(current.clone())
                            .or_default()
                            .children
                            .insert(name.to_owned());
                        if toks.get(i + 2) == Some(&Tok::Punct('{')) {
                            self.modules.entry(child.clone()).or_default().file = file.to_owned();
                            depth += 1;
                            stack.push((child, depth));
                            i += 3;
                            continue;
                        }
                    }
                }
                Tok::Ident(word)
                    if matches!(
                        word.as_str(),
                        "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union"
                    ) =>
                {
                    if let Some(name) = ident(toks.get(i + 1)) {
                        self.modules
                            .entry(current.clone())
                            .or_default()
                            .defines
                            .insert(name.to_owned());
                    }
                }
                Tok::Ident(word) if word == "macro_rules" => {
                    if let Some(name) = ident(toks.get(i + 2)) {
                        self.modules
                            .entry(current.clone())
                            .or_default()
                            .defines
                            .insert(name.to_owned());
                    }
                }
                Tok::Ident(word) => {
                    used.insert(word.clone());
                    // An inline path starts here unless it continues one (`a::crate`
                    // is not a thing, but `x::super` is not a start either).
                    let continues = i > 0 && toks[i - 1] == Tok::PathSep;
                    if !continues && toks.get(i + 1) == Some(&Tok::PathSep) {
                        let mut path = vec![word.clone()];
                        let mut j = i + 2;
                        while let Some(next) = ident(toks.get(j)) {
                            path.push(next.to_owned());
                            if toks.get(j + 1) != Some(&Tok::PathSep) {
                                break;
                            }
                            j += 2;
                        }
                        // `$crate::..` in a macro body is `crate::..`.
                        self.references.push(Reference {
                            from: file.to_owned(),
                            text: path.join("::"),
                            module: current.clone(),
                            path,
                            reexported: None,
                        });
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// Every edge, by file; a file with none has an empty set.
    fn graph(&self) -> Graph {
        let mut graph = Graph::default();
        for module in self.modules.values() {
            graph.edges.entry(module.file.clone()).or_default();
        }
        for reference in &self.references {
            let Some(path) = self.absolute(&reference.module, &reference.path) else {
                continue;
            };
            if let Some(name) = &reference.reexported {
                let named = !name.is_empty()
                    && self
                        .used_names
                        .get(&reference.from)
                        .is_some_and(|u| u.contains(name));
                if !named {
                    continue;
                }
            }
            let target = match self.resolve(&path, &mut Vec::new()) {
                Some(Target::Module(m)) => self.modules[&m].file.clone(),
                Some(Target::Item(file)) => file,
                None => continue,
            };
            if target != reference.from {
                graph
                    .edges
                    .entry(reference.from.clone())
                    .or_default()
                    .insert(target.clone());
                graph
                    .via
                    .entry((reference.from.clone(), target))
                    .or_default()
                    .insert(reference.text.clone());
            }
        }
        graph
    }

    /// What the absolute `path` names: a module, or an item and the file defining it.
    /// (The rest of a path past an item, `Item::new` or `Enum::Variant`, is inside it.)
    fn resolve(&self, path: &[String], visiting: &mut Vec<(ModPath, String)>) -> Option<Target> {
        let mut module: ModPath = Vec::new();
        for segment in path {
            let m = self.modules.get(&module)?;
            // Not found (a name made by a macro, or a gap in this reader): charge the
            // module's file.
            match self
                .lookup(&module, segment, visiting)
                .unwrap_or_else(|| Target::Item(m.file.clone()))
            {
                Target::Module(m) => module = m,
                item @ Target::Item(_) => return Some(item),
            }
        }
        Some(Target::Module(module))
    }

    /// What `name` is in `module`, if it is found there. `visiting`: the lookups in
    /// progress, which globs (`pub use child::*` and `use super::*` in the child)
    /// would otherwise go round forever.
    fn lookup(
        &self,
        module: &ModPath,
        name: &str,
        visiting: &mut Vec<(ModPath, String)>,
    ) -> Option<Target> {
        let key = (module.clone(), name.to_owned());
        if visiting.contains(&key) {
            return None;
        }
        visiting.push(key);
        let found = self.lookup_here(module, name, visiting);
        visiting.pop();
        found
    }

    fn lookup_here(
        &self,
        module: &ModPath,
        name: &str,
        visiting: &mut Vec<(ModPath, String)>,
    ) -> Option<Target> {
        let m = self.modules.get(module)?;
        let child: ModPath = module.iter().cloned().chain([name.to_owned()]).collect();
        if m.children.contains(name) && self.modules.contains_key(&child) {
            return Some(Target::Module(child));
        }
        if m.defines.contains(name) {
            return Some(Target::Item(m.file.clone()));
        }
        for import in m.imports.iter().filter(|i| !i.glob) {
            if import.name.as_deref() == Some(name) {
                if let Some(path) = self.absolute(module, &import.path) {
                    if let Some(target) = self.resolve(&path, visiting) {
                        return Some(target);
                    }
                }
            }
        }
        for import in m.imports.iter().filter(|i| i.glob) {
            let Some(source) = self.absolute(module, &import.path) else {
                continue;
            };
            if let Some(Target::Module(source)) = self.resolve(&source, visiting) {
                if source != *module {
                    if let Some(target) = self.lookup(&source, name, visiting) {
                        return Some(target);
                    }
                }
            }
        }
        None
    }

    /// `path`, written in `module`, from the crate root; `None` when it leads out of
    /// the crate (`std::..`) or is not a module path (`Self::new`, `Vec::new`).
    fn absolute(&self, module: &ModPath, path: &[String]) -> Option<ModPath> {
        let (first, rest) = path.split_first()?;
        let mut base: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => module.clone(),
            "super" => {
                let mut parent = module.clone();
                parent.pop()?;
                parent
            }
            child if self.modules.get(module)?.children.contains(child) => {
                let mut base = module.clone();
                base.push(child.to_owned());
                base
            }
            _ => return None,
        };
        let mut rest = rest;
        while rest.first().map(String::as_str) == Some("super") {
            base.pop()?;
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }
}

#[derive(Debug)]
enum Target {
    Module(ModPath),
    /// An item, defined in this file.
    Item(String),
}
/// Whether the `use` at `at` is preceded by `pub` or `pub(..)`.
fn is_public(toks: &[Tok], at: usize) -> bool {
    let mut k = at;
    if k > 0 && toks[k - 1] == Tok::Punct(')') {
        while k > 0 && toks[k - 1] != Tok::Punct('(') {
            k -= 1;
        }
        k -= 1;
    }
    k > 0 && ident(toks.get(k - 1)) == Some("pub")
}

/// The leaves of a use tree: (path, glob, the name it binds).
fn use_tree(toks: &[Tok], prefix: &[String], out: &mut Vec<(ModPath, bool, Option<String>)>) {
    let mut path = prefix.to_vec();
    let mut i = 0;
    if toks.first() == Some(&Tok::PathSep) {
        return; // `::core::..`: another crate
    }
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(word) if word == "as" => {
                let alias = ident(toks.get(i + 1)).map(str::to_owned);
                if path.last().map(String::as_str) == Some("self") {
                    path.pop(); // `{self as name}`
                }
                out.push((path, false, alias.filter(|a| a != "_")));
                return;
            }
            Tok::Ident(word) => {
                path.push(word.clone());
                i += 1;
            }
            Tok::PathSep => i += 1,
            Tok::Punct('*') => {
                out.push((path, true, None));
                return;
            }
            Tok::Punct('{') => {
                // Split the group at its top-level commas.
                let mut depth = 0;
                let mut start = i + 1;
                for j in i..toks.len() {
                    match toks[j] {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                if start < j {
                                    use_tree(&toks[start..j], &path, out);
                                }
                                return;
                            }
                        }
                        Tok::Punct(',') if depth == 1 => {
                            if start < j {
                                use_tree(&toks[start..j], &path, out);
                            }
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            _ => i += 1,
        }
    }
    if path.last().map(String::as_str) == Some("self") {
        path.pop();
        let name = path.last().cloned();
        out.push((path, false, name));
    } else if !path.is_empty() {
        let name = path.last().cloned();
        out.push((path, false, name));
    }
}

// ---------------------------------------------------------------------------------
// Cycles

/// Cycles, `[a, b, .., a]`, enough to show every file that is on one: the shortest
/// through the first such file, then through the first not shown yet, and so on.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for start in graph.keys() {
        if seen.contains(start) {
            continue;
        }
        if let Some(cycle) = shortest_cycle(graph, start) {
            seen.extend(cycle.iter().cloned());
            found.push(cycle);
        }
    }
    found
}

/// The shortest path from `start` back to itself, by breadth-first search.
fn shortest_cycle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                let mut cycle = vec![start.to_owned()];
                let mut at = node;
                while at != start {
                    cycle.push(at.to_owned());
                    at = parent[at];
                }
                cycle[1..].reverse();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if !parent.contains_key(next.as_str()) {
                parent.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}
