//! `emberlens profile top|collapsed|svg FILE...`: pprof reports on the
//! command line, with `go tool pprof`'s option names and meanings.
//!
//! Glue only: files are read and decoded here (errors name the file),
//! several files are merged (`emberlens_pprof::merge`, as pprof merges its
//! inputs), and `emberlens_flame` does the rest.
//!
//! - `top`: pprof's `-top` table; `--json` prints `[{"function", "flat",
//!   "cum"}]` in the sample type's raw unit, sorted by flat descending.
//! - `collapsed`: folded stacks (`a;b;c 42`); with `--diff-base`, both
//!   values per stack (`a;b;c BASE NEW`, the input of `difffolded.pl`-style
//!   tools).
//! - `svg`: a self-contained flamegraph; with `--diff-base`, coloured by
//!   growth (red) and shrink (blue).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use emberlens_flame::collapsed::{collapsed, frame_label};
use emberlens_flame::svg::{SvgOptions, svg};
use emberlens_flame::top::TopOptions;
use emberlens_flame::{FlameTree, Granularity, Model, Options, SampleIndex, TagFilter};
use regex::Regex;

/// The report to print.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// pprof's `-top` table.
    Top,
    /// Folded stacks, one line per distinct stack.
    Collapsed,
    /// An SVG flamegraph.
    Svg,
}

/// Arguments of `emberlens profile`.
#[derive(clap::Args, Debug)]
pub struct ProfileArgs {
    /// What to print.
    #[arg(value_enum)]
    report: Report,
    /// pprof profiles (gzipped or not); several are merged.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Sample type, by name (`alloc_space`, `inuse_space`, `delay`) or number.
    #[arg(long = "sample-index", visible_alias = "sample_index")]
    sample_index: Option<String>,
    /// Keep only samples with a frame matching this regex.
    #[arg(long)]
    focus: Option<String>,
    /// Drop samples with a frame matching this regex.
    #[arg(long)]
    ignore: Option<String>,
    /// Remove frames matching this regex.
    #[arg(long)]
    hide: Option<String>,
    /// Keep only frames matching this regex.
    #[arg(long)]
    show: Option<String>,
    /// Drop the frames above the root-most frame matching this regex.
    #[arg(long = "show-from", visible_alias = "show_from")]
    show_from: Option<String>,
    /// Keep samples whose label matches: `KEY=REGEX`, `KEY=RANGE` (`bytes=1kb:`), or `REGEX` on `key:value`.
    #[arg(long)]
    tagfocus: Option<String>,
    /// Drop samples whose label matches (same syntax as --tagfocus).
    #[arg(long)]
    tagignore: Option<String>,
    /// A base profile: report the change from it (pprof's -diff_base).
    #[arg(long = "diff-base", visible_alias = "diff_base")]
    diff_base: Option<PathBuf>,
    /// With --diff-base: scale the profile to the base's totals first, so
    /// the diff shows changes in shape, not volume (pprof's -normalize).
    #[arg(long)]
    normalize: bool,
    /// At most this many rows in `top` (default: all).
    #[arg(long)]
    nodecount: Option<usize>,
    /// Drop rows with a cum share at most this (pprof's default 0.005).
    #[arg(long, default_value_t = 0.005)]
    nodefraction: f64,
    /// What a frame is: functions, filefunctions, files, lines or addresses.
    #[arg(long, default_value = "functions")]
    granularity: String,
    /// `top` as JSON: [{"function", "flat", "cum"}] in the raw unit.
    #[arg(long)]
    json: bool,
    /// SVG width in pixels.
    #[arg(long, default_value_t = 1200.0)]
    width: f64,
}

fn regex(flag: &str, re: &Option<String>) -> anyhow::Result<Option<Regex>> {
    re.as_deref()
        .map(|r| Regex::new(r).with_context(|| format!("--{flag} {r:?}")))
        .transpose()
}

fn tag_filter(flag: &str, f: &Option<String>) -> anyhow::Result<Vec<TagFilter>> {
    f.as_deref()
        .map(|t| TagFilter::parse(t).with_context(|| format!("--{flag} {t:?}")))
        .into_iter()
        .collect()
}

fn load(path: &Path) -> anyhow::Result<emberlens_pprof::Profile> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    emberlens_pprof::decode_any(&bytes).with_context(|| format!("{}", path.display()))
}

/// Reads, decodes and merges `files` (pprof, folded stacks or Chrome
/// `.cpuprofile`) into one model. One pprof file is decoded straight into
/// the model (`Model::from_bytes`: no per-sample vectors).
fn model(files: &[PathBuf]) -> anyhow::Result<Model> {
    if let [path] = files {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        return Model::from_any_bytes(&bytes, emberlens_pprof::DEFAULT_MAX_DECODED_BYTES)
            .with_context(|| format!("{}", path.display()));
    }
    let profiles = files
        .iter()
        .map(|f| load(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged;
    let one = if let [p] = profiles.as_slice() {
        p
    } else {
        merged = emberlens_pprof::merge(&profiles).map_err(|e| {
            // The merger numbers its inputs; name the file instead.
            let name = match &e {
                emberlens_pprof::MergeError::Invalid { index, .. }
                | emberlens_pprof::MergeError::Incompatible { index, .. } => files
                    .get(*index)
                    .map_or_else(String::new, |f| format!("{}: ", f.display())),
                emberlens_pprof::MergeError::Empty => String::new(),
            };
            anyhow::anyhow!("merging profiles: {name}{e}")
        })?;
        &merged
    };
    let names = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Model::from_pprof(one).with_context(|| names)
}

/// Runs `emberlens profile`; returns the text to print.
pub fn run(args: &ProfileArgs) -> anyhow::Result<String> {
    let granularity: Granularity = args.granularity.parse().context("--granularity")?;
    let opts = Options {
        sample_index: args.sample_index.clone().map(SampleIndex::Name),
        granularity,
        focus: regex("focus", &args.focus)?,
        ignore: regex("ignore", &args.ignore)?,
        hide: regex("hide", &args.hide)?,
        show: regex("show", &args.show)?,
        show_from: regex("show-from", &args.show_from)?,
        tagfocus: tag_filter("tagfocus", &args.tagfocus)?,
        tagignore: tag_filter("tagignore", &args.tagignore)?,
    };
    if !(0.0..=1.0).contains(&args.nodefraction) {
        anyhow::bail!(
            "--nodefraction {}: must be between 0 and 1",
            args.nodefraction
        );
    }
    let mut model = model(&args.files)?;
    let base = match &args.diff_base {
        Some(b) => Some(model_of_base(b)?),
        None => None,
    };
    match &base {
        Some(b) if args.normalize => model
            .normalize_to(b)
            .context("--normalize: the profile and --diff-base")?,
        None if args.normalize => anyhow::bail!("--normalize needs --diff-base"),
        _ => {}
    }
    let files = args
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    match args.report {
        Report::Top => {
            let top = TopOptions {
                node_count: args.nodecount.unwrap_or(0),
                node_fraction: args.nodefraction,
                ..TopOptions::default()
            };
            let table = match &base {
                Some(b) => model.top_diff(b, &opts, &top),
                None => model.top(&opts, &top),
            }
            .with_context(|| files.clone())?;
            Ok(if args.json {
                let mut j = table.to_json();
                j.push('\n');
                j
            } else {
                table.to_text()
            })
        }
        Report::Collapsed => match &base {
            None => Ok(collapsed(
                &model.flame_tree(&opts).with_context(|| files.clone())?,
            )),
            Some(b) => Ok(collapsed_diff(
                &model.diff_tree(b, &opts).with_context(|| files.clone())?,
            )),
        },
        Report::Svg => {
            let tree = match &base {
                Some(b) => model.diff_tree(b, &opts),
                None => model.flame_tree(&opts),
            }
            .with_context(|| files.clone())?;
            let index = model.sample_index(opts.sample_index.as_ref())?;
            let st = &model.sample_types()[index];
            let svg_opts = SvgOptions {
                width_px: args.width,
                title: format!("{} ({})", files, st.name),
                unit: st.unit.clone(),
            };
            Ok(svg(&tree, &svg_opts))
        }
    }
}

fn model_of_base(path: &Path) -> anyhow::Result<Model> {
    Model::from_pprof(&load(path)?).with_context(|| format!("--diff-base {}", path.display()))
}

/// `stack BASE NEW` per distinct stack of a diff tree, sorted; stacks with
/// both values zero left out.
fn collapsed_diff(tree: &FlameTree) -> String {
    use std::collections::BTreeMap;
    let labels: Vec<String> = tree.frames.iter().map(frame_label).collect();
    // Self values of the base are not stored: a node's base self value is
    // its base total minus its children's.
    let mut stacks: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut path: Vec<u32> = Vec::new();
    for (i, n) in tree.nodes.iter().enumerate().skip(1) {
        path.truncate(n.depth as usize - 1);
        path.push(n.frame);
        let children_base = tree
            .children(i as u32)
            .map(|c| tree.base_total(c))
            .fold(0i64, i64::wrapping_add);
        let base_self = tree.base_total(i as u32).wrapping_sub(children_base);
        let self_value = tree.self_value(i as u32);
        if base_self != 0 || self_value != 0 {
            let key = path
                .iter()
                .map(|&f| labels[f as usize].as_str())
                .collect::<Vec<_>>()
                .join(";");
            let e = stacks.entry(key).or_insert((0, 0));
            e.0 = e.0.wrapping_add(base_self);
            e.1 = e.1.wrapping_add(self_value);
        }
    }
    let mut out = String::new();
    for (k, (b, n)) in stacks {
        if b != 0 || n != 0 {
            out.push_str(&format!("{k} {b} {n}\n"));
        }
    }
    out
}
