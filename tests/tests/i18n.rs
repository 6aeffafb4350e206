//! The pages speak English and Simplified Chinese: every text key the pages use is in both
//! languages (`web/i18n.js`), neither language has a key the other lacks, and every alert kind
//! the server raises has a name in both. A page showing a raw key, or English in the Chinese
//! page, fails here before a browser is started.

use std::collections::BTreeSet;
use std::path::Path;

fn web(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../web")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys of one language's table: the `"key": "text",` lines between `lang: {` and `},`.
fn keys(source: &str, lang: &str) -> BTreeSet<String> {
    let start = source
        .find(&format!("\n  {lang}: {{\n"))
        .unwrap_or_else(|| panic!("no {lang} table"));
    let table = &source[start..];
    let end = table.find("\n  },").expect("the table ends");
    table[..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix('"')?;
            let (key, tail) = rest.split_once('"')?;
            tail.starts_with(':').then(|| key.to_owned())
        })
        .collect()
}

/// Every literal key after `marker` (`t("`, `data-i18n="`, ...) in `source`, where the marker
/// starts a word (`t("` and not `get("`).
fn used(source: &str, marker: &str) -> BTreeSet<String> {
    source
        .match_indices(marker)
        .filter(|(i, _)| {
            source[..*i]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-')))
        })
        .filter_map(|(i, _)| {
            let rest = &source[i + marker.len()..];
            let key = &rest[..rest.find('"')?];
            (!key.is_empty() && !key.contains('$')).then(|| key.to_owned())
        })
        .collect()
}

#[test]
fn every_text_is_in_english_and_chinese() {
    let table = web("i18n.js");
    let (en, zh) = (keys(&table, "en"), keys(&table, "zh"));
    assert!(en.len() > 100, "read {} English keys", en.len());
    assert_eq!(
        en.difference(&zh).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "English keys without Chinese"
    );
    assert_eq!(
        zh.difference(&en).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "Chinese keys without English"
    );
    let mut needed = BTreeSet::new();
    for file in ["app.js", "owner.js", "common.js"] {
        needed.extend(used(&web(file), "t(\""));
    }
    for file in ["index.html", "owner.html"] {
        let page = web(file);
        for marker in [
            "data-i18n=\"",
            "data-i18n-placeholder=\"",
            "data-i18n-title=\"",
        ] {
            needed.extend(used(&page, marker));
        }
    }
    assert!(needed.len() > 60, "found {} keys in use", needed.len());
    let missing: Vec<_> = needed.difference(&en).collect();
    assert!(
        missing.is_empty(),
        "keys used but not translated: {missing:?}"
    );
    // Names built from data: alert kinds, and the status of an alert.
    for kind in tagwatch_model::AlertKind::ALL {
        assert!(en.contains(&format!("kind.{}", kind.as_str())), "{kind}");
    }
    for status in ["open", "accepted", "rejected"] {
        assert!(en.contains(&format!("alert.status.{status}")), "{status}");
    }
    for action in tagwatch_model::ActionKind::ALL {
        assert!(
            en.contains(&format!("action.{}", action.as_str())),
            "{action:?}"
        );
    }
    for source in ["report", "hotlist"] {
        assert!(en.contains(&format!("cases.source.{source}")), "{source}");
    }
    for kind in ["assigned", "unassigned", "closed"] {
        assert!(en.contains(&format!("cases.history.{kind}")), "{kind}");
    }
}
