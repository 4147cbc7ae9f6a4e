//! Unit tests of the promqltest parser, one per construct: each feeds a small
//! script to [`parse_script`] and looks at the commands (or the error) it
//! gives. Series-description details have their own tests in `series.rs`,
//! Go number and string syntax in `golit.rs`.

use emberlens_model::{CounterResetHint, FloatHistogram, Labels, Span, is_stale_nan};

use super::*;

fn parse(text: &str) -> Vec<Command> {
    parse_script(text)
        .unwrap_or_else(|e| panic!("{e}\n--- script ---\n{text}"))
        .commands
}

fn err(text: &str) -> ScriptError {
    match parse_script(text) {
        Ok(s) => panic!("parsed: {s:?}\n--- script ---\n{text}"),
        Err(e) => e,
    }
}

fn only_load(text: &str) -> Load {
    match parse(text).as_slice() {
        [Command::Load(l)] => l.clone(),
        other => panic!("{other:?}"),
    }
}

fn only_eval(text: &str) -> Eval {
    match parse(text).as_slice() {
        [Command::Eval(e)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

fn floats(samples: &[(i64, TestValue)]) -> Vec<(i64, f64)> {
    samples
        .iter()
        .map(|(t, v)| match v {
            TestValue::Float(f) => (*t, *f),
            TestValue::Histogram(_) => panic!("histogram at {t}"),
        })
        .collect()
}

fn series_values(e: &Eval) -> Vec<Vec<Option<f64>>> {
    let series = match &e.result {
        ExpectedResult::Series(s) | ExpectedResult::RangeVector { series: s, .. } => s,
        other => panic!("{other:?}"),
    };
    series
        .iter()
        .map(|s| {
            s.values
                .iter()
                .map(|v| match v {
                    None => None,
                    Some(TestValue::Float(f)) => Some(*f),
                    Some(TestValue::Histogram(_)) => panic!("histogram"),
                })
                .collect()
        })
        .collect()
}

#[test]
fn load_expands_values_at_step_timestamps() {
    let l = only_load("load 1m\n  m{a=\"b\"} 1+2x3 _ stale _x2 5\n");
    assert_eq!(l.line, 1);
    assert_eq!(l.step_ms, 60_000);
    assert!(!l.with_nhcb);
    let s = &l.series[0];
    assert_eq!(s.line, 2);
    assert_eq!(
        s.labels,
        Labels::from_pairs([("__name__", "m"), ("a", "b")])
    );
    let v = floats(&s.samples);
    assert_eq!(
        v[..4],
        [(0, 1.0), (60_000, 3.0), (120_000, 5.0), (180_000, 7.0)]
    );
    assert_eq!(v[4].0, 300_000);
    assert!(is_stale_nan(v[4].1));
    assert_eq!(v[5], (480_000, 5.0));
    assert_eq!(v.len(), 6);
    assert_eq!(s.start_timestamps, None);
}

#[test]
fn load_with_nhcb_and_steps() {
    let l = only_load("load_with_nhcb 1h30m\n m_bucket{le=\"1\"} 0 1");
    assert!(l.with_nhcb);
    assert_eq!(l.step_ms, 5_400_000);
    assert_eq!(only_load("load 0\n m 1 2").series[0].samples[1].0, 0);
}

#[test]
fn load_block_ends_at_blank_or_comment_line() {
    let cmds = parse("load 5m\n a 1\n # comment\n\nclear\nCLEAR extra words\n");
    assert!(matches!(&cmds[0], Command::Load(l) if l.series.len() == 1));
    assert_eq!(cmds[1], Command::Clear { line: 5 });
    assert_eq!(cmds[2], Command::Clear { line: 6 });
    // A comment line inside a block ends it; the next line is a command.
    let e = err("load 5m\n a 1\n# c\n b 2\n");
    assert_eq!(e.line, 4);
    assert!(e.reason.contains("invalid command"), "{e}");
}

#[test]
fn load_errors() {
    let e = err("load\n");
    assert_eq!(
        (e.line, e.reason.contains("invalid load command")),
        (1, true)
    );
    let e = err("load 5\n");
    assert!(e.reason.contains("invalid step definition"), "{e}");
    let e = err("load -5m\n");
    assert!(e.reason.contains("invalid step definition"), "{e}");
    assert!(err("LOAD 5m\n a 1").reason.contains("invalid load command"));
    assert!(
        err("load_foo 5m\n a 1")
            .reason
            .contains("invalid load command")
    );
    let e = err("load 5m\n a 1\n b{x=\"1\"} 1 y\n");
    assert_eq!((e.line, e.column), (3, Some(13)));
    assert!(e.reason.contains("\"y\""), "{e}");
    assert_eq!(e.to_string(), format!("line 3:13: {}", e.reason));
}

#[test]
fn later_load_line_for_the_same_series_wins() {
    let l = only_load("load 5m\n a 1\n b 1\n a 2 3\n");
    assert_eq!(l.series.len(), 2);
    assert_eq!(
        (l.series[0].line, floats(&l.series[0].samples)),
        (4, vec![(0, 2.0), (300_000, 3.0)])
    );
}

#[test]
fn unknown_command_names_the_line() {
    let e = err("\n\nfoo bar\n");
    assert_eq!(e, error(2, "invalid command \"foo bar\""));
    assert_eq!(e.to_string(), "line 3: invalid command \"foo bar\"");
}

#[test]
fn histogram_literal_in_load() {
    let l = only_load(
        "load 1m\n h {{schema:1 sum:-0.3 count:3.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3 n_buckets:[4.1 5] n_offset:-5 counter_reset_hint:gauge}} {{}}x1",
    );
    let s = &l.series[0];
    assert_eq!(s.samples.len(), 3);
    let TestValue::Histogram(h) = &s.samples[0].1 else {
        panic!("{:?}", s.samples[0]);
    };
    assert_eq!(
        h,
        &FloatHistogram {
            counter_reset_hint: CounterResetHint::Gauge,
            schema: 1,
            zero_threshold: 0.05,
            zero_count: 7.1,
            count: 3.1,
            sum: -0.3,
            positive_spans: vec![Span {
                offset: -3,
                length: 3
            }],
            negative_spans: vec![Span {
                offset: -5,
                length: 2
            }],
            positive_buckets: vec![5.1, 10.0, 7.0],
            negative_buckets: vec![4.1, 5.0],
            custom_values: vec![],
        }
    );
    assert_eq!(
        s.samples[2],
        (120_000, TestValue::Histogram(FloatHistogram::default()))
    );
}

#[test]
fn start_timestamp_lines() {
    let l = only_load(
        "load 1m\n\
         \x20 m{a=\"1\"}@st _ _ -30s-1mx2 0 *\n\
         \x20 m{a=\"1\"} 1 _ 3 4 5 6 7\n\
         \x20 n 1 2\n",
    );
    let m = &l.series[0];
    assert_eq!(m.samples.len(), 6);
    assert_eq!(
        m.start_timestamps,
        Some(vec![
            None,
            Some(120_000 - 30_000),
            Some(180_000 - 90_000),
            Some(240_000 - 150_000),
            Some(300_000),
            Some(360_000),
        ])
    );
    // The explicit @st applies to the next line only.
    assert_eq!(l.series[1].start_timestamps, None);
}

#[test]
fn standalone_start_timestamp_default_cycles() {
    let l = only_load("load 1m\n a 1 2\n @st -1s _\n b 1 2 3\n c _ 2\n");
    assert_eq!(l.series[0].start_timestamps, None);
    assert_eq!(
        l.series[1].start_timestamps,
        Some(vec![Some(-1_000), None, Some(119_000)])
    );
    assert_eq!(l.series[2].start_timestamps, Some(vec![None]));
}

#[test]
fn start_timestamp_items() {
    let seq = |s: &str| parse_st_sequence(s);
    assert_eq!(seq("_x2 1ms"), Ok(vec![None, None, Some(1)]));
    assert_eq!(
        seq("+1m -59999msx1"),
        Ok(vec![Some(60_000), Some(-59_999), Some(-59_999)])
    );
    assert_eq!(
        seq("0-1mx2"),
        Ok(vec![Some(0), Some(-60_000), Some(-120_000)])
    );
    assert_eq!(
        seq("1s+1sx1 *x1"),
        Ok(vec![Some(1_000), Some(2_000), Some(2_000), Some(2_000)])
    );
    assert_eq!(seq("*"), Ok(vec![Some(0)]));
    assert!(seq("_x0").is_err());
    assert!(seq("1m30s").is_err());
    assert!(seq("5").is_err());
    assert!(seq("1m+1m").is_err());
    assert!(seq("1mx").is_err());
}

#[test]
fn start_timestamp_errors() {
    let e = err("load 1m\n a@st 0 0\n b 1 2\n");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("does not match"), "{e}");
    let e = err("load 1m\n a@st 0\n a 1 2\n");
    assert!(
        e.reason
            .contains("@st line has 1 values but sample line has 2"),
        "{e}"
    );
    let e = err("load 1m\n a@st 0\n");
    assert!(e.reason.contains("no following sample line"), "{e}");
    let e = err("load 1m\n a@st 0\n b@st 0\n b 1\n");
    assert_eq!(e.line, 2);
    let e = err("load 1m\n a@st 0 q\n a 1 2\n");
    assert!(e.reason.contains("invalid @st sequence"), "{e}");
}

#[test]
fn instant_eval_with_series() {
    let text = "eval instant at 1m30s sum by (a) (m)\n  {a=\"x\"} 3\n  {a=\"y\"} _\n";
    let e = only_eval(text);
    assert_eq!(e.line, 1);
    assert_eq!(e.expr, "sum by (a) (m)");
    assert_eq!(e.expr_column, 23);
    assert_eq!(e.query, EvalQuery::Instant { at_ms: 90_000 });
    assert!(e.expects.is_empty());
    assert_eq!(series_values(&e), [vec![Some(3.0)], vec![None]]);
}

#[test]
fn expr_column_counts_indentation_and_takes_the_capture() {
    // `strings.Index` upstream would find the "1" inside "1m".
    let line = "\t eval instant at 1m 1";
    let e = only_eval(line);
    assert_eq!(e.expr, "1");
    assert_eq!(&line[e.expr_column - 1..], "1");
}

#[test]
fn eval_without_result_lines_expects_empty() {
    let e = only_eval("eval instant at 0 nothing\n");
    assert_eq!(e.result, ExpectedResult::Series(vec![]));
    let e = only_eval("eval range from 0 to 1m step 30s nothing");
    assert_eq!(e.result, ExpectedResult::Series(vec![]));
}

#[test]
fn range_eval() {
    let e = only_eval("eval range from 0 to 2m step 1m rate(m[1m])\n  {} 1 _ 3\n");
    assert_eq!(
        e.query,
        EvalQuery::Range {
            start_ms: 0,
            end_ms: 120_000,
            step_ms: 60_000
        }
    );
    assert_eq!(e.expr, "rate(m[1m])");
    assert_eq!(series_values(&e), [vec![Some(1.0), None, Some(3.0)]]);
    let e = err("eval range from 2m to 1m step 1m m\n");
    assert!(
        e.reason
            .contains("end timestamp (1m) is before start timestamp (2m)"),
        "{e}"
    );
    let e = err("eval range from 0 to 1m step x m\n");
    assert!(e.reason.contains("invalid step definition"), "{e}");
}

#[test]
fn scalar_and_string_results() {
    let e = only_eval("eval instant at 0 1+1\n  2\n");
    assert_eq!(e.result, ExpectedResult::Scalar(2.0));
    let e = only_eval("eval instant at 0 x\n  0x10\n");
    assert_eq!(e.result, ExpectedResult::Scalar(16.0));
    let e = only_eval("eval instant at 0 x\n  -Inf\n");
    assert_eq!(e.result, ExpectedResult::Scalar(f64::NEG_INFINITY));
    let e = only_eval("eval instant at 0 x\n  NaN\n");
    assert!(matches!(e.result, ExpectedResult::Scalar(f) if f.is_nan()));
    let e = only_eval("eval instant at 50m \"Foo\"\n\texpect string \"F\\too\"\n");
    assert_eq!(e.result, ExpectedResult::String("F\too".to_string()));
    let e = only_eval("eval instant at 50m (\"\")\n   \texpect string ``\n");
    assert_eq!(e.result, ExpectedResult::String(String::new()));
    // A scalar ends the block: the next line is read as a command.
    let e = err("eval instant at 0 1\n  1\n  2\n");
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("invalid command"), "{e}");
}

#[test]
fn expect_string_errors() {
    let e = err("eval instant at 0 \"a\"\n expect string\n");
    assert!(
        e.reason.contains("a quoted string literal is required"),
        "{e}"
    );
    let e = err("eval instant at 0 \"a\"\n expect string a\n");
    assert!(e.reason.contains("correctly quoted"), "{e}");
    let e = err("eval instant at 0 \"a\"\n expect string  \"a\"\n");
    assert!(e.reason.contains("correctly quoted"), "{e}");
    let e = err("eval instant at 0 \"a\"\n expect string \"a\"\n m 1\n");
    assert_eq!(e.line, 3);
}

#[test]
fn expect_range_vector() {
    let e = only_eval(
        "eval instant at 1m m[1m]\n  expect range vector from 10s to 1m step 10s\n  m{env=\"a\"} 2 3 _ 5\n",
    );
    let ExpectedResult::RangeVector {
        start_ms,
        end_ms,
        step_ms,
        ..
    } = e.result
    else {
        panic!("{:?}", e.result);
    };
    assert_eq!((start_ms, end_ms, step_ms), (10_000, 60_000, 10_000));
    assert_eq!(
        series_values(&e),
        [vec![Some(2.0), Some(3.0), None, Some(5.0)]]
    );
    // Empty range vector.
    let e =
        only_eval("eval instant at 1m m[1m]\n  expect range vector from 9m10s to 10m step 1m\n");
    assert!(
        matches!(e.result, ExpectedResult::RangeVector { ref series, .. } if series.is_empty())
    );
}

#[test]
fn instant_eval_allows_one_value_per_series() {
    let e = err("eval instant at 0 m\n  m 1 2\n");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("expect range vector"), "{e}");
    // The directive must come first, as upstream reads line by line.
    let e = err("eval instant at 1m m[1m]\n  m 1 2\n  expect range vector from 0 to 1m step 1m\n");
    assert_eq!(e.line, 2);
    let e = err("eval range from 0 to 1m step 1m m\n  expect range vector from 0 to 1m step 1m\n");
    assert!(
        e.reason.contains("only allowed after an instant eval"),
        "{e}"
    );
}

#[test]
fn expect_lines() {
    let e = only_eval(
        "eval instant at 0 m\n\
         \x20 expect fail msg: something  went wrong \n\
         \x20 expect warn regex: a (b|c)\n\
         \x20 expect warn\n\
         \x20 expect no_info\n\
         \x20 expect ordered\n\
         \x20 expect warn msg:no space\n",
    );
    let kinds: Vec<_> = e
        .expects
        .iter()
        .map(|x| (x.line, x.kind, x.message.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                2,
                ExpectKind::Fail,
                Some(MessageMatch::Exact("something  went wrong".into()))
            ),
            (
                3,
                ExpectKind::Warn,
                Some(MessageMatch::Regex("a (b|c)".into()))
            ),
            (4, ExpectKind::Warn, None),
            (5, ExpectKind::NoInfo, None),
            (6, ExpectKind::Ordered, None),
            (
                7,
                ExpectKind::Warn,
                Some(MessageMatch::Exact("no space".into()))
            ),
        ]
    );
}

#[test]
fn expect_line_errors() {
    let e = err("eval instant at 0 m\n  expect info\n  expect no_info\n");
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("info and no_info"), "{e}");
    let e = err("eval instant at 0 m\n  expect no_warn\n  expect warn\n");
    assert!(e.reason.contains("warn and no_warn"), "{e}");
    let e = err("eval instant at 0 m\n  expect fail\n  expect fail msg: x\n");
    assert!(e.reason.contains("multiple expect fail"), "{e}");
    let e = err("eval instant at 0 m\n  expect maybe\n");
    assert!(e.reason.contains("invalid expect statement"), "{e}");
    let e = err("eval instant at 0 m\n  expect warn msg:\n");
    assert!(e.reason.contains("invalid expect statement"), "{e}");
    let e = err("eval instant at 0 m\n  expect warn regex: (\n");
    assert!(e.reason.contains("invalid regex"), "{e}");
    // `expect` followed by a tab is not an expect line upstream either.
    let e = err("eval instant at 0 m\n  expect\twarn\n");
    assert_eq!(e.line, 2);
    // A metric named `expect` is written `expect{}`.
    let e = only_eval("eval instant at 0 m\n  expect{} 1\n");
    assert_eq!(series_values(&e), [vec![Some(1.0)]]);
}

#[test]
fn deprecated_forms_map_onto_expects() {
    let e = only_eval("eval_fail instant at 0 m\n");
    assert_eq!(
        e.expects,
        [Expect {
            line: 1,
            kind: ExpectKind::Fail,
            message: None
        }]
    );
    let e = only_eval(
        "eval_fail instant at 0 m\n  expected_fail_message vector cannot contain metrics\n",
    );
    assert_eq!(
        e.expects,
        [Expect {
            line: 2,
            kind: ExpectKind::Fail,
            message: Some(MessageMatch::Exact("vector cannot contain metrics".into()))
        }]
    );
    let e = only_eval("eval_fail range from 0 to 1m step 1m m\n  expected_fail_regexp (a|b)\n");
    assert_eq!(
        e.expects[0].message,
        Some(MessageMatch::Regex("(a|b)".into()))
    );
    assert!(
        err("eval_fail instant at 0 m\n  expected_fail_regexp (\n")
            .reason
            .contains("invalid regexp")
    );
    // Only after eval_fail is it special; otherwise it reads as a series.
    assert_eq!(
        err("eval instant at 0 m\n  expected_fail_message x\n").line,
        2
    );
    // An explicit expect fail may join eval_fail; both must match.
    let e = only_eval("eval_fail instant at 0 m\n  expect fail msg: x\n");
    assert_eq!(e.expects.len(), 2);
    let e = only_eval("eval_warn instant at 0 m\n  {} 1\n");
    assert_eq!(e.expects[0].kind, ExpectKind::Warn);
    let e = only_eval("eval_info range from 0 to 1m step 1m m\n");
    assert_eq!(e.expects[0].kind, ExpectKind::Info);
    let e = only_eval("eval_ordered instant at 0 sort(m)\n  m{a=\"1\"} 1\n  m{a=\"2\"} 2\n");
    assert_eq!(e.expects[0].kind, ExpectKind::Ordered);
    assert!(
        err("eval_ordered range from 0 to 1m step 1m m\n")
            .reason
            .contains("invalid evaluation command")
    );
    assert!(
        err("eval_warn instant at 0 m\n  expect no_warn\n")
            .reason
            .contains("warn and no_warn")
    );
}

#[test]
fn eval_errors() {
    let e = err("eval instant  m\n");
    assert!(e.reason.contains("invalid timestamp definition"), "{e}");
    let e = err("eval instant at -5m m\n");
    assert!(
        e.reason.contains("invalid timestamp definition \"-5m\""),
        "{e}"
    );
    let e = err("eval instant at 5m\n");
    assert!(e.reason.contains("invalid evaluation command"), "{e}");
    let e = err("Eval instant at 5m m\n");
    assert!(e.reason.contains("invalid evaluation command"), "{e}");
    let e = err("eval instant at 0 m\n  m\n");
    assert!(e.reason.contains("has no values"), "{e}");
    let e = err("eval instant at 0 m\n  m 1\n  m 2\n");
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("already given on line 2"), "{e}");
    let e = err("eval instant at 0 m\n  m 1\n  3\n");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("scalar"), "{e}");
}

#[test]
fn expected_histograms_record_whether_the_hint_was_written() {
    let e = only_eval(
        "eval instant at 1m m[1m]\n  expect range vector from 0 to 1m step 1m\n  m {{count:1 counter_reset_hint:not_reset}} {{count:2}}\n",
    );
    let ExpectedResult::RangeVector { series, .. } = &e.result else {
        panic!("{:?}", e.result);
    };
    assert_eq!(series[0].counter_reset_hint_set, [true, false]);
    let Some(TestValue::Histogram(h)) = &series[0].values[0] else {
        panic!("{:?}", series[0].values);
    };
    assert_eq!(h.counter_reset_hint, CounterResetHint::NotReset);
    assert_eq!(h.count, 1.0);
}

#[test]
fn crlf_and_odd_whitespace() {
    let cmds = parse("load 1m\r\n  m 1\r\n\r\neval instant at 0 m\r\n  m 1\r\n");
    assert_eq!(cmds.len(), 2);
    let Command::Eval(e) = &cmds[1] else {
        panic!("{cmds:?}");
    };
    assert_eq!(e.expr, "m");
}

#[test]
fn no_panics_on_garbage() {
    let inputs = [
        "",
        "\n",
        "load",
        "eval",
        "eval instant",
        "eval range from",
        "load 1m\n {",
        "load 1m\n m{\"",
        "load 1m\n m{a=\"\\",
        "load 1m\n m {{",
        "load 1m\n m {{buckets:[",
        "load 1m\n m 1+",
        "load 1m\n m 1+1x",
        "load 1m\n @st",
        "load 1m\n @st x",
        "load 1m\n m@st +",
        "load 1m\n m@st 1m+",
        "load 1m\n m@st 1m-1mx",
        "eval instant at 0 m\n expect",
        "eval instant at 0 m\n expect string \"",
        "eval instant at 0 m\n expect range vector",
        "load 1m\n m 1e",
        "load 1m\n m .",
        "load 1m\n m -",
        "load 1m\n m _x",
        "load 1m\n m {{}}x",
        "load 1m\n m {{}}+",
        "load 1m\n m é",
        "load 1m\n é 1",
        "load 1m\n m{é=\"1\"} 1",
        "load 1m\n m{a=\"é\"} 1 é",
        "load 1m\n m {{sum:é}}",
        "load 9223372036854775807ms\n m 1 1",
        "load 1m\n m 1e308+1e308x2",
    ];
    for text in inputs {
        let _ = parse_script(text);
    }
    // Timestamps that overflow are errors, not wrap-arounds.
    assert!(
        err("load 9223372036854775807ms\n m 1 1 1")
            .reason
            .contains("overflows")
    );
}
