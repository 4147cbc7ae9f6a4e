//! Every `prometheus.yml` in the seeds (`../shared/seeds/*.md`, fenced
//! `yaml` blocks with `scrape_configs` or `global`) parses.
//!
//! One seed block has a top-level `global` but is an Alertmanager config
//! (`route`, `receivers`): it is not a `prometheus.yml`, and both Prometheus
//! and we refuse it; the test checks that instead.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use emberlens_config::Config;

/// (file, line, text) of each candidate block.
fn yaml_blocks(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = md.lines().enumerate();
    while let Some((i, l)) = lines.next() {
        if l.trim_end() != "```yaml" && l.trim_end() != "```yml" {
            continue;
        }
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let top = |key: &str| body.lines().any(|l| l.starts_with(key));
        if top("scrape_configs:") || top("global:") {
            out.push((i + 1, body));
        }
    }
    out
}

#[test]
fn every_seed_prometheus_yml_parses() {
    let Some(dir) = common::shared_dir("seeds") else {
        return;
    };
    let mut found = 0;
    let mut alertmanager = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let md = std::fs::read_to_string(path).unwrap();
        for (line, body) in yaml_blocks(&md) {
            let name = format!("{}:{line}", path.file_name().unwrap().to_string_lossy());
            let is_alertmanager = body
                .lines()
                .any(|l| l.starts_with("route:") || l.starts_with("receivers:"));
            match Config::parse(&body) {
                Ok(cfg) => {
                    assert!(
                        !is_alertmanager,
                        "{name}: an Alertmanager config was accepted"
                    );
                    eprintln!(
                        "{name}: {} jobs, ignored {:?}",
                        cfg.scrape_configs.len(),
                        cfg.ignored
                    );
                    found += 1;
                }
                Err(e) if is_alertmanager => {
                    eprintln!("{name}: Alertmanager config refused as expected: {e}");
                    alertmanager += 1;
                }
                Err(e) => panic!("{name}: {e}\n{body}"),
            }
        }
    }
    assert!(
        found >= 3,
        "only {found} prometheus.yml blocks found in the seeds"
    );
    eprintln!("{found} seed configs parsed, {alertmanager} Alertmanager configs refused");
}
