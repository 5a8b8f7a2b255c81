//! A component's imports, read before it is compiled.
//!
//! Compiling a large component (an 18 MB Python one) takes tens of seconds;
//! an import the host cannot provide would only be found after that, when it
//! is linked. The import section sits at the top of the component, so it is
//! read first: an import from a package the host does not serve is refused
//! at once, with the fix for the language the component was built from (its
//! `producers` section says). Linking stays the authoritative check (of
//! versions and of every function's type); this one only comes first.

use std::path::Path;

use wasmparser::{Parser, Payload};

use super::LoadError;

/// The packages whose interfaces the host's linker serves: WASI 0.2 (sockets
/// link, but no socket is ever granted) and the subagent world's own.
const PROVIDED: [&str; 7] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "subagent:plugin/",
];

/// The advice when the language is not known.
pub(super) const GENERIC_HELP: &str = "the host provides WASI 0.2 (no sockets, env or args are granted) and subagent:plugin@0.1.0; remove the dependency that imports it";

/// The language a component was built from, as its producers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Language {
    JavaScript,
    Python,
    Rust,
}

/// Refuse a component that imports an interface outside [`PROVIDED`].
/// Bytes that do not parse are left to the compiler, which says why.
pub(super) fn check(path: &Path, wasm: &[u8]) -> Result<(), LoadError> {
    let Ok(found) = read(wasm) else {
        return Ok(());
    };
    let Some(import) = found
        .imports
        .iter()
        .find(|name| !PROVIDED.iter().any(|p| name.starts_with(p)))
    else {
        return Ok(());
    };
    Err(LoadError::UnknownImport {
        path: path.to_owned(),
        import: format!("`{import}`"),
        help: help(import, found.language),
    })
}

struct Found {
    imports: Vec<String>,
    language: Option<Language>,
}

/// The component's own imports (not those of the modules and components
/// nested in it) and the language its producers name.
fn read(wasm: &[u8]) -> wasmparser::Result<Found> {
    let mut found = Found {
        imports: Vec::new(),
        language: None,
    };
    // 0: the top-level component; nested modules and components go deeper.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import?;
                    // A type import (`task` for a world's `use types.{task}`)
                    // names a type, not something the host must serve.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        found.imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::CustomSection(section) if section.name() == "producers" => {
                if let wasmparser::KnownCustom::Producers(reader) = section.as_known() {
                    for field in reader.into_iter().flatten() {
                        for value in field.values.into_iter().flatten() {
                            let name = value.name.to_ascii_lowercase();
                            found.language = found.language.or(language_of(&name));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

fn language_of(producer: &str) -> Option<Language> {
    if producer.contains("javascript")
        || producer.contains("componentize-js")
        || producer.contains("componentizejs")
        || producer.contains("starlingmonkey")
        || producer.contains("jco")
    {
        Some(Language::JavaScript)
    } else if producer.contains("python") || producer.contains("componentize-py") {
        Some(Language::Python)
    } else if producer == "rust" || producer.contains("wit-bindgen-rust") {
        Some(Language::Rust)
    } else {
        None
    }
}

fn help(import: &str, language: Option<Language>) -> String {
    let http = import.starts_with("wasi:http/");
    let js = "JavaScript (componentize-js / jco): it adds wasi:http unless told not to; build with `-d http -d fetch-event` (e.g. `jco componentize app.js --wit wit --world-name subagent -d http -d fetch-event -o app.wasm`)";
    let python = "Python (componentize-py): do not import the `wasi:http` bindings (or a module that uses them) in the subagent";
    let rust = "Rust: a dependency pulls it in (an HTTP client or `wasi` crate feature); remove it — a subagent reaches models only through the `model` interface";
    if !http {
        return GENERIC_HELP.into();
    }
    let advice = match language {
        Some(Language::JavaScript) => js.to_owned(),
        Some(Language::Python) => python.to_owned(),
        Some(Language::Rust) => rust.to_owned(),
        None => format!("by language — {js}; {python}; {rust}"),
    };
    format!(
        "subagents get no network (model calls go through the host's `model` interface). {advice}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, CustomSection,
        InstanceType,
    };

    /// A component that imports one empty instance `name`, produced by
    /// `language` when given.
    fn importing(name: &str, language: Option<&str>) -> Vec<u8> {
        let mut component = Component::new();
        if let Some(language) = language {
            // One field, `language`, with one value: LEB128 counts (< 128
            // here) and length-prefixed strings.
            let string = |s: &str, out: &mut Vec<u8>| {
                out.push(s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            };
            let mut data = vec![1];
            string("language", &mut data);
            data.push(1);
            string(language, &mut data);
            string("1", &mut data);
            component.section(&CustomSection {
                name: "producers".into(),
                data: data.into(),
            });
        }
        let mut types = ComponentTypeSection::new();
        types.instance(&InstanceType::new());
        component.section(&types);
        let mut imports = ComponentImportSection::new();
        imports.import(name, ComponentTypeRef::Instance(0));
        component.section(&imports);
        component.finish()
    }

    fn refusal(wasm: &[u8]) -> Option<String> {
        check(Path::new("x.wasm"), wasm)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn wasi_http_is_refused_with_the_fix_for_the_language() {
        let js = refusal(&importing("wasi:http/types@0.2.10", Some("JavaScript"))).unwrap();
        assert!(js.contains("`wasi:http/types@0.2.10`"), "{js}");
        assert!(js.contains("-d http -d fetch-event"), "{js}");
        assert!(!js.contains("componentize-py"), "{js}");
        let python = refusal(&importing(
            "wasi:http/outgoing-handler@0.2.0",
            Some("Python"),
        ))
        .unwrap();
        assert!(python.contains("componentize-py"), "{python}");
        let unknown = refusal(&importing("wasi:http/types@0.2.0", None)).unwrap();
        assert!(
            unknown.contains("-d http -d fetch-event") && unknown.contains("Rust"),
            "{unknown}"
        );
    }

    #[test]
    fn a_type_import_is_not_an_interface() {
        let mut types = ComponentTypeSection::new();
        types
            .defined_type()
            .primitive(wasm_encoder::PrimitiveValType::Bool);
        let mut imports = ComponentImportSection::new();
        imports.import(
            "task",
            ComponentTypeRef::Type(wasm_encoder::TypeBounds::Eq(0)),
        );
        let mut component = Component::new();
        component.section(&types);
        component.section(&imports);
        assert_eq!(refusal(&component.finish()), None);
    }

    #[test]
    fn what_the_host_serves_passes() {
        for name in [
            "wasi:filesystem/types@0.2.6",
            "wasi:cli/environment@0.2.0",
            "subagent:plugin/host@0.1.0",
        ] {
            assert_eq!(refusal(&importing(name, None)), None, "{name}");
        }
        let other = refusal(&importing("acme:secrets/vault", None)).unwrap();
        assert!(other.contains("remove the dependency"), "{other}");
    }
}
