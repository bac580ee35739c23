//! Where `fever show` writes: stdout, or a file that appears only once it is complete (written
//! as `FILE.tmp`, then renamed; removed again if writing fails). A reader that goes away
//! (`fever show run.trace | head`) ends the command quietly.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use fever_core::trace::AtomicFile;

use crate::config::Output;

/// What was written.
pub(crate) enum Delivered {
    /// To stdout (or as much as its reader wanted).
    Stdout,
    /// To this file, of this size.
    File { path: PathBuf, bytes: u64 },
}

/// Refuses an output file that is the trace being read.
pub(super) fn check_not_the_trace(output: &Output, trace: &Path) -> anyhow::Result<()> {
    let Output::File(path) = output else {
        return Ok(());
    };
    let same = match (fs::canonicalize(path), fs::canonicalize(trace)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(anyhow!(
            "{}: is the trace being shown; choose another output with -o",
            path.display()
        ));
    }
    Ok(())
}

/// Runs `write` on the output.
pub(crate) fn deliver(
    output: &Output,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<Delivered> {
    match output {
        Output::Stdout => {
            let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            match write(&mut out).and_then(|()| out.flush()) {
                Ok(()) => Ok(Delivered::Stdout),
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Delivered::Stdout),
                Err(err) => Err(err).context("cannot write to stdout"),
            }
        }
        Output::File(path) => {
            let cannot = || format!("cannot write {}", path.display());
            let mut file = AtomicFile::create(path).with_context(cannot)?;
            let temp = file.temp_path().to_path_buf();
            if let Err(err) = write(&mut file).and_then(|()| file.commit().map(drop)) {
                let _ = fs::remove_file(&temp);
                return Err(err).with_context(cannot);
            }
            let bytes = fs::metadata(path).map_or(0, |m| m.len());
            Ok(Delivered::File {
                path: path.clone(),
                bytes,
            })
        }
    }
}
