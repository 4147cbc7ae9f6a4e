//! Hostile but valid profiles: every entry point of the crate returns
//! (values or errors) and never panics — cycles in stacks, very deep
//! stacks, recursion, locations without lines or functions without names,
//! values at the ends of `i64`, empty profiles, labels with odd units.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use emberlens_flame::collapsed::collapsed;
use emberlens_flame::svg::{SvgOptions, svg};
use emberlens_flame::top::TopOptions;
use emberlens_flame::{Granularity, Model, Options, SampleIndex, TagFilter};
use emberlens_pprof::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
use regex::Regex;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn profile(rng: &mut Rng) -> Profile {
    let mut strings: Vec<String> = vec!["".into()];
    for w in [
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        "bytes",
        "k",
        "v",
        "a.b",
        "(",
        "x;y",
        "é<&>",
    ] {
        strings.push(w.into());
    }
    let n_str = strings.len() as u64;
    let n_fn = 1 + rng.below(6);
    let function: Vec<Function> = (1..=n_fn)
        .map(|id| Function {
            id,
            name: rng.below(n_str) as i64,
            system_name: rng.below(n_str) as i64,
            filename: rng.below(n_str) as i64,
            start_line: rng.next() as i64,
        })
        .collect();
    let mapping = vec![Mapping {
        id: 1,
        memory_start: 0,
        memory_limit: u64::MAX,
        filename: rng.below(n_str) as i64,
        ..Mapping::default()
    }];
    let n_loc = 1 + rng.below(8);
    let location: Vec<Location> = (1..=n_loc)
        .map(|id| Location {
            id,
            mapping_id: rng.below(2),
            address: rng.next(),
            line: (0..rng.below(4))
                .map(|_| Line {
                    function_id: rng.below(n_fn + 1),
                    line: rng.next() as i64,
                    column: 0,
                })
                .collect(),
            is_folded: false,
        })
        .collect();
    let extremes = [0, 1, -1, i64::MAX, i64::MIN, 1 << 40];
    let sample: Vec<Sample> = (0..rng.below(20))
        .map(|_| {
            // Deep, cyclic stacks: the same few locations over and over.
            let depth = match rng.below(4) {
                0 => 0,
                1 => 3,
                2 => 200,
                _ => 3000,
            };
            Sample {
                location_id: (0..depth).map(|_| 1 + rng.below(n_loc)).collect(),
                value: (0..2)
                    .map(|_| extremes[rng.below(extremes.len() as u64) as usize])
                    .collect(),
                label: (0..rng.below(3))
                    .map(|_| Label {
                        key: rng.below(n_str) as i64,
                        str: rng.below(n_str) as i64 * (rng.below(2) as i64),
                        num: extremes[rng.below(extremes.len() as u64) as usize],
                        num_unit: rng.below(n_str) as i64,
                    })
                    .collect(),
            }
        })
        .collect();
    Profile {
        sample_type: vec![
            ValueType { r#type: 1, unit: 2 },
            ValueType { r#type: 3, unit: 4 },
        ],
        sample,
        mapping,
        location,
        function,
        string_table: strings,
        drop_frames: rng.below(n_str) as i64 * (rng.below(2) as i64),
        keep_frames: rng.below(n_str) as i64 * (rng.below(2) as i64),
        time_nanos: extremes[rng.below(6) as usize],
        duration_nanos: extremes[rng.below(6) as usize],
        default_sample_type: rng.below(n_str) as i64,
        ..Profile::default()
    }
}

#[test]
fn hostile_profiles_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let option_sets: Vec<Options> = vec![
        Options::default(),
        Options {
            granularity: Granularity::Addresses,
            focus: Some(Regex::new("a").unwrap()),
            hide: Some(Regex::new("\\(").unwrap()),
            ..Options::default()
        },
        Options {
            granularity: Granularity::Lines,
            show: Some(Regex::new("b|é").unwrap()),
            show_from: Some(Regex::new(".").unwrap()),
            ignore: Some(Regex::new("x;y").unwrap()),
            sample_index: Some(SampleIndex::Name("cpu".into())),
            ..Options::default()
        },
        Options {
            granularity: Granularity::Files,
            tagfocus: vec![
                TagFilter::parse("k=v").unwrap(),
                TagFilter::parse("1kb:2mb").unwrap(),
            ],
            tagignore: vec![TagFilter::parse("a").unwrap()],
            ..Options::default()
        },
    ];
    let any = Regex::new(".").unwrap();
    for round in 0..60 {
        let p = profile(&mut rng);
        assert!(
            emberlens_pprof::validate(&p).is_ok(),
            "round {round}: generator made an invalid profile"
        );
        let m = Model::from_pprof(&p).unwrap();
        let base = Model::from_pprof(&profile(&mut rng)).unwrap();
        for o in &option_sets {
            let t = m.flame_tree(o).unwrap();
            let _ = collapsed(&t);
            let _ = svg(&t, &SvgOptions::default());
            for node_count in [0, 1, 3] {
                let top = TopOptions {
                    node_count,
                    ..TopOptions::default()
                };
                let _ = m.top(o, &top).unwrap().to_text();
                let _ = m.top_diff(&base, o, &top).unwrap().to_json();
            }
            let _ = m.sandwich(o, &any).unwrap();
            let _ = m.diff_tree(&base, o).unwrap();
        }
        assert!(
            m.sample_index(Some(&SampleIndex::Name("nope".into())))
                .is_err()
        );
        assert!(
            m.sample_index(Some(&SampleIndex::Name("-1".into())))
                .is_err()
        );
        assert!(m.sample_index(Some(&SampleIndex::Number(2))).is_err());
    }
}

#[test]
fn unvalidated_references_are_errors_not_panics() {
    let mut p = Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 0 }],
        string_table: vec!["".into(), "samples".into()],
        sample: vec![Sample {
            location_id: vec![7],
            value: vec![1],
            label: vec![],
        }],
        ..Profile::default()
    };
    let e = Model::from_pprof(&p).unwrap_err().to_string();
    assert!(e.contains("no location 7"), "{e}");
    p.sample[0].location_id.clear();
    p.sample[0].value.push(2);
    assert!(
        Model::from_pprof(&p)
            .unwrap_err()
            .to_string()
            .contains("2 values for 1")
    );
    p.sample[0].value.pop();
    p.sample_type[0].unit = 99;
    assert!(
        Model::from_pprof(&p)
            .unwrap_err()
            .to_string()
            .contains("out of range")
    );
    // No sample types at all.
    let empty = Model::from_pprof(&Profile {
        string_table: vec!["".into()],
        ..Profile::default()
    })
    .unwrap();
    assert!(empty.flame_tree(&Options::default()).is_err());
}
