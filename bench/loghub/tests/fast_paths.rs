//! The miner's fast paths change no result on real data: on every Loghub-2k dataset in
//! `../shared/data/loghub` (or `$LOGHUB_DATA`), mining with the skeleton cache gives the same
//! clusters and templates as mining without it, and parameter extraction by token alignment
//! gives the parameters of the regex it replaced. Skipped, with a message, when the data is
//! absent (it is not part of the repository).

use loglens_core::template::{reference_parameters, MaskRule, MinerConfig, TemplateMiner, TemplatePattern};
use loglens_loghub::{default_data_dir, default_settings_path, Dataset, Settings};

/// The contents of every dataset present.
fn datasets() -> Vec<Dataset> {
    let dir = default_data_dir();
    if !dir.is_dir() {
        println!("skipped: {} not found", dir.display());
        return Vec::new();
    }
    let settings = Settings::load(&default_settings_path()).expect("settings load");
    settings
        .datasets
        .iter()
        .filter(|ds| dir.join(&ds.name).is_dir())
        .map(|ds| Dataset::load(&dir.join(&ds.name), ds).expect("dataset loads"))
        .collect()
}

/// The product default with the skeleton cache on, and off (a user rule that never matches
/// turns it off).
fn configs() -> [(MinerConfig, MinerConfig); 2] {
    let off = |config: MinerConfig| MinerConfig {
        masks: vec![MaskRule::new("\u{0}never\u{0}").expect("valid")],
        ..config
    };
    let bench = MinerConfig {
        digit_tokens_vary: false,
        ..MinerConfig::default()
    };
    [
        (MinerConfig::default(), off(MinerConfig::default())),
        (bench.clone(), off(bench)),
    ]
}

#[test]
fn the_skeleton_cache_changes_no_cluster() {
    for dataset in datasets() {
        for (fast, slow) in configs() {
            let mut fast = TemplateMiner::new(fast);
            let mut slow = TemplateMiner::new(slow);
            for line in &dataset.contents {
                assert_eq!(fast.add(line), slow.add(line), "{}: {line}", dataset.name);
            }
            for line in &dataset.contents {
                assert_eq!(
                    fast.match_message(line),
                    slow.match_message(line),
                    "{}",
                    dataset.name
                );
            }
            assert_eq!(fast.templates(), slow.templates(), "{}", dataset.name);
        }
    }
}

#[test]
fn parameters_equal_the_regex_ones() {
    let mut checked = 0usize;
    for dataset in datasets() {
        let mut miner = TemplateMiner::new(MinerConfig::default());
        let clusters: Vec<_> = dataset.contents.iter().map(|l| miner.add(l).cluster).collect();
        let set = miner.snapshot();
        for (line, cluster) in dataset.contents.iter().zip(clusters) {
            let text = &set
                .template_of(cluster)
                .expect("every cluster has a template")
                .text;
            // Each line against its own template, and against another line's (mostly no fit).
            for template in [
                text.as_str(),
                set.templates()[checked % set.templates().len()].text.as_str(),
            ] {
                assert_eq!(
                    TemplatePattern::new(template).parameters(line),
                    reference_parameters(template, line),
                    "{}: template {template:?}, line {line:?}",
                    dataset.name
                );
            }
            checked += 1;
        }
    }
    println!("{checked} lines checked");
}
