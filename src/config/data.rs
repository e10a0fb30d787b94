//! `[data]`: the permissions of the files in the data directory.

use carbonx_soup::files::FileModes;
use serde::{Deserialize, Serialize};

/// `[data]`: the files the server creates in its data directory (journal,
/// day logs, snapshots, end-of-day files).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The permission bits of new files, octal (default `"0600"`: the
    /// owner only); directories get the same plus the search bit wherever
    /// a class may read (`"0640"` gives `0750` directories).
    pub file_mode: FileMode,
}

impl DataConfig {
    /// The modes of new files and directories.
    pub fn file_modes(&self) -> FileModes {
        FileModes::for_files(self.file_mode.0)
    }
}

/// A file mode written as octal text (`"0640"`): no execute, setuid or
/// sticky bits, and the owner (the server) must read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileMode(u32);

impl Default for FileMode {
    fn default() -> Self {
        FileMode(FileModes::default().file)
    }
}

impl TryFrom<String> for FileMode {
    type Error = String;
    fn try_from(text: String) -> Result<FileMode, String> {
        let bits = u32::from_str_radix(&text, 8).map_err(|_| format!("file_mode {text:?} is not an octal mode"))?;
        if bits & !0o666 != 0 {
            return Err(format!("file_mode {text:?}: files need no execute, setuid or sticky bits (at most 0666)"));
        }
        if bits & 0o600 != 0o600 {
            return Err(format!("file_mode {text:?}: the owner (the server) must read and write (0600 at least)"));
        }
        Ok(FileMode(bits))
    }
}

impl From<FileMode> for String {
    fn from(mode: FileMode) -> String {
        format!("{:04o}", mode.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_file_mode_is_octal_text_and_keeps_the_owner_reading_and_writing() {
        assert_eq!(Config::demo().data.file_modes(), FileModes { file: 0o600, dir: 0o700 });
        assert!(Config::demo().to_toml().contains("file_mode = \"0600\""));
        let with = |mode: &str| Config::parse(&format!("{}\n[data]\nfile_mode = \"{mode}\"\n", base()), "x.toml");
        assert_eq!(with("0640").unwrap().data.file_modes(), FileModes { file: 0o640, dir: 0o750 });
        for (bad, why) in [("0755", "execute"), ("0400", "owner"), ("rw", "octal"), ("4600", "setuid")] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("x.toml"), "{bad}: {err}");
        }
    }

    /// The demo configuration without its `[data]` table.
    fn base() -> String {
        let demo = Config::demo().to_toml();
        let (before, after) = demo.split_once("[data]").expect("the demo has a data table");
        let rest = after.find("\n[").map_or("", |end| &after[end..]);
        format!("{before}{rest}")
    }
}
