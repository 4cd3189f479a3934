//! The shape of `server/`, checked on its sources so that it stays as it is: no file imports
//! its way back to itself (the parts and services depend on each other in one direction, and
//! the loop on all of them), only the loop's folder names the loop's type, and no file grows
//! past [`LINES_MAX`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a file of `server/` may have: past it, split it by concept.
const LINES_MAX: usize = 500;

/// A module path inside the crate (`["server", "rpc", "kv"]`).
type ModulePath = Vec<String>;

/// Every `.rs` file under `server/`, by its module path, with its text.
fn sources() -> BTreeMap<ModulePath, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs: Vec<PathBuf> = vec![root.join("server")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("server/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).expect("under src/");
            let mut module: ModulePath = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|last| last == "mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("a readable source");
            files.insert(module, text);
        }
    }
    files
}

/// `text` without its line comments (doc comments name modules without importing them),
/// without the paths of `pub(in …)` visibilities, and without its unit tests (which may reach
/// anywhere).
fn code_of(text: &str) -> String {
    let mut code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    while let Some(at) = code.find("pub(in ") {
        let end = code[at..].find(')').map_or(code.len(), |len| at + len + 1);
        code.replace_range(at..end, "pub");
    }
    match code.find("#[cfg(test)]\nmod tests {") {
        Some(at) => code[..at].to_string(),
        None => code,
    }
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` is `a::b`, `a::c::d`, `a::c::e`.
fn expand_use_tree(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').expect("a closed group")];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .flat_map(expand_use_tree)
        .map(|item| format!("{prefix}{item}"))
        .collect()
}

/// Every crate-relative path `code` names: in its `use` items (a line that starts with `use`
/// or `pub(…) use`, up to its `;`), and written out in its body.
fn paths_named(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut body = String::new();
    let mut statement: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        let without_visibility = match trimmed.strip_prefix("pub") {
            Some(rest) if rest.starts_with('(') => rest.split_once(')').map_or("", |(_, r)| r),
            Some(rest) => rest,
            None => trimmed,
        };
        if statement.is_none() && without_visibility.trim_start().starts_with("use ") {
            statement = Some(String::new());
        }
        let Some(text) = statement.as_mut() else {
            body.push_str(line);
            body.push('\n');
            continue;
        };
        text.push_str(line);
        if let Some(end) = text.find(';') {
            let tree = text[..end].split_once("use ").map_or("", |(_, tree)| tree);
            let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
            paths.extend(
                expand_use_tree(&tree.replace(", ", ",").replace("{ ", "{"))
                    .iter()
                    .map(|path| path.split(" as ").next().unwrap_or_default().to_string()),
            );
            statement = None;
        }
    }
    for prefix in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = body[from..].find(prefix) {
            let start = from + at;
            let boundary = body[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != ':');
            let end = body[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(body.len(), |len| start + len);
            if boundary {
                paths.push(body[start..end].trim_end_matches(':').to_string());
            }
            from = end.max(start + prefix.len());
        }
    }
    paths
}

/// Whether `module` is unit tests (a `tests.rs` or a file under a `tests/` folder), which may
/// reach anywhere.
fn is_tests(module: &ModulePath) -> bool {
    module.iter().any(|part| part == "tests")
}

/// The file (module) of `server/` that `path`, named in `module`, leads to: the longest
/// prefix of it that is a file.
fn file_of(
    path: &str,
    module: &ModulePath,
    files: &BTreeMap<ModulePath, String>,
) -> Option<ModulePath> {
    let mut parts = path.split("::").filter(|p| !p.is_empty()).peekable();
    let mut full: ModulePath = match parts.peek().copied() {
        Some("crate") => {
            parts.next();
            Vec::new()
        }
        Some("self") => {
            parts.next();
            module.clone()
        }
        Some("super") => {
            let mut up = module.clone();
            while parts.peek() == Some(&"super") {
                parts.next();
                up.pop();
            }
            up
        }
        // A path from a child module of `module` (`use kind::CallKind;` in `calls/mod.rs`).
        Some(first) if files.contains_key(&[module.as_slice(), &[first.to_string()]].concat()) => {
            module.clone()
        }
        _ => return None,
    };
    full.extend(parts.map(str::to_string));
    (1..=full.len())
        .rev()
        .map(|len| full[..len].to_vec())
        .find(|prefix| files.contains_key(prefix))
}

/// Which files of `server/` each file imports.
fn imports(files: &BTreeMap<ModulePath, String>) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    files
        .iter()
        .filter(|(module, _)| !is_tests(module))
        .map(|(module, text)| {
            let code = code_of(text);
            let children = files
                .keys()
                .filter(|other| other.len() == module.len() + 1 && other.starts_with(module))
                .map(|child| child.last().expect("a child has a name").clone());
            let child_paths = children
                .flat_map(|child| {
                    let prefix = format!("{child}::");
                    let named = code.match_indices(&prefix).any(|(at, _)| {
                        code[..at]
                            .chars()
                            .next_back()
                            .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != ':')
                    });
                    named.then_some(child)
                })
                .collect::<Vec<_>>();
            let targets = paths_named(&code)
                .into_iter()
                .chain(child_paths)
                .filter_map(|path| file_of(&path, module, files))
                .filter(|target| target != module && target.first().is_some_and(|m| m == "server"))
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// A file from which `imports` leads back to itself, with the way round.
fn find_circle(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Option<Vec<ModulePath>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        at: &ModulePath,
        graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        marks: &mut BTreeMap<ModulePath, Mark>,
        stack: &mut Vec<ModulePath>,
    ) -> Option<Vec<ModulePath>> {
        match marks.get(at) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|m| m == at).expect("on the stack");
                let mut circle = stack[from..].to_vec();
                circle.push(at.clone());
                return Some(circle);
            }
            None => {}
        }
        marks.insert(at.clone(), Mark::Open);
        stack.push(at.clone());
        for next in graph.get(at).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, marks, stack) {
                return Some(circle);
            }
        }
        stack.pop();
        marks.insert(at.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut marks, &mut Vec::new()))
}

fn show(circle: &[ModulePath]) -> String {
    circle
        .iter()
        .map(|m| m.join("/"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[test]
fn no_file_of_server_imports_its_way_back_to_itself() {
    let files = sources();
    assert!(files.len() > 50, "found only {} files", files.len());
    let graph = imports(&files);
    if let Some(circle) = find_circle(&graph) {
        panic!("an import circle in server/: {}", show(&circle));
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    // The check above is only as good as this: a file that imports one that imports it back.
    let mut files = sources();
    files
        .get_mut(&vec!["server".to_string(), "calls".to_string()])
        .expect("server/calls")
        .push_str("\nuse crate::server::rpc::methods::Handler;\n");
    let circle = find_circle(&imports(&files)).expect("the added import closes a circle");
    assert!(show(&circle).contains("server/calls"), "{}", show(&circle));
    assert_eq!(
        expand_use_tree("super::{a::B,c::{d,e}}"),
        ["super::a::B", "super::c::d", "super::c::e"]
    );
}

#[test]
fn only_the_loops_folder_names_the_loop_type() {
    for (module, text) in sources() {
        if module.get(1).is_some_and(|m| m == "event_loop") || is_tests(&module) {
            continue;
        }
        let code = code_of(&text);
        let names_it = code.match_indices("Server").any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let after = code[at + "Server".len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !word(before) && !word(after)
        });
        assert!(!names_it, "{} names the loop type", module.join("/"));
    }
}

#[test]
fn no_file_of_server_is_past_the_line_limit() {
    for (module, text) in sources() {
        let lines = text.lines().count();
        assert!(
            lines <= LINES_MAX,
            "{}.rs has {lines} lines (at most {LINES_MAX}): split it by concept",
            module.join("/")
        );
    }
}
