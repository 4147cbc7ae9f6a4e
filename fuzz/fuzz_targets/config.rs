//! The prometheus.yml parser, the file-SD parser and relabeling must never
//! panic: any text is a config or an error; a parsed config's relabel rules
//! (regexes and replacements the fuzzer wrote) run over a target's labels.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = emberlens_config::parse_file_sd(data, emberlens_config::FileSdFormat::Json);
    let _ = emberlens_config::parse_file_sd(data, emberlens_config::FileSdFormat::Yaml);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(cfg) = emberlens_config::Config::parse(text) else { return };
    let target = emberlens_model::Labels::from_pairs([
        ("__address__", "localhost:9090"),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
        ("job", "fuzz"),
        ("env", "prod"),
    ]);
    for sc in &cfg.scrape_configs {
        if let Some(l) = emberlens_config::process(&target, &sc.relabel_configs) {
            let _ = emberlens_config::process(&l, &sc.metric_relabel_configs);
        }
    }
});
