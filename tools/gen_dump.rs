//! `hibp-gen`: writes deterministic synthetic Pwned Passwords dumps for tests and benchmarks,
//! and the bundled sample corpus in `data/`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hibp_mirror::HashKind;

#[path = "synth.rs"]
mod synth;

use synth::{SplitMix64, Synth, PREFIXES};

/// Writes deterministic synthetic Pwned Passwords corpora.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Shape of the generated corpus.
#[derive(clap::Args)]
struct Shape {
    /// Hash kind: sha1 or ntlm.
    #[arg(long, default_value = "sha1")]
    kind: HashKind,
    /// Seed; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of populated prefixes, evenly spread over the 1,048,576 (rounded to a power of 2).
    #[arg(long, default_value_t = 1024)]
    prefixes: u32,
    /// Mean hashes per populated prefix (the 2026 corpus has about 2,000).
    #[arg(long, default_value_t = 2000)]
    per_prefix: u32,
}

impl Shape {
    fn synth(&self) -> Synth {
        let step = (PREFIXES / self.prefixes.clamp(1, PREFIXES)).max(1);
        Synth::new(self.kind.byte_len(), self.seed, step, self.per_prefix)
    }
}

#[derive(Subcommand)]
enum Command {
    /// A single-file dump of `HASH:COUNT` lines ordered by hash.
    Dump {
        #[command(flatten)]
        shape: Shape,
        /// End lines with CRLF instead of LF.
        #[arg(long)]
        crlf: bool,
        /// Leave the last line without a line ending.
        #[arg(long)]
        no_final_newline: bool,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// A directory of `<PREFIX>.txt` range bodies, as the official downloader's `-s false` mode
    /// writes them.
    RangeDir {
        #[command(flatten)]
        shape: Shape,
        /// Output directory (created if missing).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// The bundled sample corpus: well-known passwords plus random filler, SHA-1 and NTLM.
    Sample {
        /// Output directory.
        #[arg(long, short, default_value = "data")]
        output: PathBuf,
    },
}

/// Well-known passwords in the sample; their counts are sample values, not real ones.
const SAMPLE_PASSWORDS: &[(&str, u32)] = &[
    ("password", 9_545_824),
    ("123456", 37_359_195),
    ("Password1!", 141_285),
    ("qwer1234", 216_426),
    ("1q2w3e4r5t", 239_874),
    ("123456789", 16_629_796),
    ("qwerty", 10_556_095),
    ("letmein", 628_503),
    ("iloveyou", 2_331_319),
    ("P@ssw0rd", 200_000),
    ("correcthorsebatterystaple", 384),
    ("hunter2", 47_812),
];

/// Random filler hashes per kind in the sample.
const SAMPLE_FILLER: usize = 3000;

fn main() -> io::Result<()> {
    match Cli::parse().command {
        Command::Dump {
            shape,
            crlf,
            no_final_newline,
            output,
        } => {
            let synth = shape.synth();
            let mut out: Box<dyn Write> = match output {
                Some(path) => Box::new(File::create(path)?),
                None => Box::new(io::stdout().lock()),
            };
            let mut out = BufWriter::with_capacity(1 << 20, &mut out);
            synth.write_dump(&mut out, crlf, !no_final_newline)?;
            out.flush()
        }
        Command::RangeDir { shape, output } => {
            let synth = shape.synth();
            fs::create_dir_all(&output)?;
            for prefix in
                (0..PREFIXES).filter(|&p| synth.populated(p) || p == 0 || p == PREFIXES - 1)
            {
                let body = synth.range_body(prefix);
                fs::write(output.join(format!("{prefix:05X}.txt")), body)?;
            }
            Ok(())
        }
        Command::Sample { output } => {
            fs::create_dir_all(&output)?;
            for kind in [HashKind::Sha1, HashKind::Ntlm] {
                let mut lines: Vec<(String, u32)> = SAMPLE_PASSWORDS
                    .iter()
                    .map(|&(pw, count)| (kind.hash_password(pw).to_hex(), count))
                    .collect();
                let synth = Synth::new(kind.byte_len(), 2026, 1, 0);
                let mut rng = SplitMix64::new(0x005A_3F1E ^ kind.byte_len() as u64);
                for _ in 0..SAMPLE_FILLER {
                    let mut hash = [0u8; synth::MAX_LEN];
                    rng.fill(&mut hash[..kind.byte_len()]);
                    let count = 1 + rng.below(50) as u32;
                    lines.push((synth.hex(&hash), count));
                }
                lines.sort();
                lines.dedup_by(|a, b| a.0 == b.0);
                let mut text = String::new();
                for (hash, count) in &lines {
                    text.push_str(&format!("{hash}:{count}\r\n"));
                }
                fs::write(output.join(format!("sample-{}.txt", kind.name())), text)?;
            }
            Ok(())
        }
    }
}
