//! Wireshark's `tshark` as an independent decoder of SoupBinTCP 3.0 and
//! OUCH 4.2 captures.
//!
//! `scripts/test.sh` installs tshark and exports `CARBONX_TSHARK`; without
//! it (and with no `tshark` in `PATH`) the tests that need it fail, saying
//! so, rather than pass without checking anything.
//!
//! Include with `#[path = "support/tshark.rs"] mod tshark;` (it needs no
//! other support module) or through `mod support;`.
#![allow(dead_code)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to do when a tool the tests need is missing.
const INSTALL_HINT: &str = "run scripts/test.sh, which installs it and exports CARBONX_TSHARK / CARBONX_PYTHON";

/// The tshark executable: `$CARBONX_TSHARK`, else `tshark` from `PATH`.
///
/// # Panics
/// If neither exists: the test must fail, not pass unchecked.
pub fn tshark_path() -> PathBuf {
    if let Some(p) = env::var_os("CARBONX_TSHARK").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CARBONX_TSHARK={} does not exist; {INSTALL_HINT}", p.display());
        return p;
    }
    find_in_path("tshark")
        .unwrap_or_else(|| panic!("tshark not found (CARBONX_TSHARK unset, none in PATH); {INSTALL_HINT}"))
}

/// The Python of the test virtual environment (with `nasdaq-protocols`):
/// `$CARBONX_PYTHON`, else `.venv-test/bin/python` in the workspace root.
///
/// # Panics
/// If neither exists.
pub fn python_path() -> PathBuf {
    if let Some(p) = env::var_os("CARBONX_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CARBONX_PYTHON={} does not exist; {INSTALL_HINT}", p.display());
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    assert!(venv.is_file(), "CARBONX_PYTHON unset and no {}; {INSTALL_HINT}", venv.display());
    venv
}

/// The first executable file called `name` in `PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// One SoupBinTCP packet as tshark decoded it, with the OUCH message it
/// carries (if tshark recognised one).
#[derive(Clone, Debug, Default)]
pub struct Pdu {
    /// Capture frame number (1-based) of the segment that completed the packet.
    pub frame: u32,
    /// True when sent to the server port.
    pub to_server: bool,
    /// `soupbintcp.*` fields in tree order, as tshark's JSON shows them.
    pub soup: Vec<(String, String)>,
    /// `ouch.*` fields in tree order; empty when no OUCH layer followed.
    pub ouch: Vec<(String, String)>,
    /// Whether an OUCH layer followed this SoupBinTCP packet.
    pub has_ouch: bool,
    /// The payload bytes when no sub-dissector took them
    /// (`soupbintcp.message`, or a `data` layer), e.g. a carbon extension
    /// message.
    pub data: Option<Vec<u8>>,
    /// The sequence number tshark shows: requested (Login Request), next
    /// (Login Accepted) or calculated (Sequenced Data). Its JSON only has a
    /// placeholder for these, so they are read from a `-V` run.
    pub seq_num: Option<u64>,
}

impl Pdu {
    /// The SoupBinTCP packet type letter (`?` if tshark shows none).
    pub fn soup_type(&self) -> char {
        self.soup_field("soupbintcp.packet_type").and_then(char_value).unwrap_or('?')
    }

    /// The OUCH message type letter, if decoded.
    pub fn ouch_type(&self) -> Option<char> {
        self.ouch_field("ouch.packet_type").and_then(char_value)
    }

    /// The OUCH payload length: the SoupBinTCP length less its type byte.
    pub fn payload_len(&self) -> Option<usize> {
        self.soup_field("soupbintcp.packet_length").and_then(|n| n.parse::<usize>().ok()).map(|n| n.saturating_sub(1))
    }

    /// The first value of a `soupbintcp.*` field.
    pub fn soup_field(&self, name: &str) -> Option<&str> {
        first(&self.soup, name)
    }

    /// The first value of an `ouch.*` field.
    pub fn ouch_field(&self, name: &str) -> Option<&str> {
        first(&self.ouch, name)
    }

    /// An `ouch.*` field that must be present.
    ///
    /// # Panics
    /// If tshark did not show it.
    pub fn ouch(&self, name: &str) -> &str {
        self.ouch_field(name).unwrap_or_else(|| panic!("tshark shows no {name} in frame {}: {self:?}", self.frame))
    }

    /// An `ouch.*` alpha field that must be present, trailing spaces removed.
    ///
    /// # Panics
    /// If tshark did not show it.
    pub fn ouch_text(&self, name: &str) -> &str {
        self.ouch(name).trim_end_matches(' ')
    }

    /// An `ouch.*` one-character field (`FT_CHAR`) that must be present.
    ///
    /// # Panics
    /// If tshark did not show it or it is not one character.
    pub fn ouch_char(&self, name: &str) -> char {
        let v = self.ouch(name);
        char_value(v).unwrap_or_else(|| panic!("{name} = {v:?} is not one character (frame {})", self.frame))
    }

    /// An `ouch.*` numeric field that must be present.
    ///
    /// # Panics
    /// If tshark did not show it or it is not a number.
    pub fn ouch_num(&self, name: &str) -> u64 {
        let v = self.ouch(name);
        v.parse().unwrap_or_else(|_| panic!("{name} = {v:?} is not a number (frame {})", self.frame))
    }
}

/// tshark's JSON shows an `FT_CHAR` as `'B'`.
fn char_value(v: &str) -> Option<char> {
    let inner = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
    let mut chars = inner.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// The first value called `name` in `fields`.
fn first<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// One expert-info item from tshark.
#[derive(Clone, Debug)]
pub struct Expert {
    /// Capture frame number.
    pub frame: u32,
    /// Severity as tshark names it: `Chat`, `Note`, `Warning`, `Error`
    /// (or the raw value if it is some other).
    pub severity: String,
    /// The expert message.
    pub message: String,
    /// The expert's own field name, e.g. `soupbintcp.req_seq_num.invalid`
    /// or `_ws.malformed.expert`.
    pub field: String,
}

/// Everything tshark decoded from a capture.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    /// SoupBinTCP packets in capture order (both directions).
    pub pdus: Vec<Pdu>,
    /// All expert infos, any severity.
    pub experts: Vec<Expert>,
    /// Frames where a dissector gave up with an exception (tshark's
    /// `_ws.malformed` layer).
    pub malformed: Vec<u32>,
    /// The server port the capture was decoded with.
    pub port: u16,
}

impl Decoded {
    /// Packets sent to the server.
    pub fn to_server(&self) -> impl Iterator<Item = &Pdu> {
        self.pdus.iter().filter(|p| p.to_server)
    }

    /// Packets sent to the client.
    pub fn to_client(&self) -> impl Iterator<Item = &Pdu> {
        self.pdus.iter().filter(|p| !p.to_server)
    }

    /// Packets that carry an OUCH message of type `t` (Replace Order and
    /// Replaced are both `U`).
    pub fn ouch_of_type(&self, t: char) -> impl Iterator<Item = &Pdu> {
        self.pdus.iter().filter(move |p| p.ouch_type() == Some(t))
    }
}

/// The tshark command line for `pcap` with `tcp.port == port` decoded as
/// SoupBinTCP; `output` selects the format (`-T json`, `-V`).
fn run_tshark(pcap: &Path, port: u16, output: &[&str]) -> String {
    let tshark = tshark_path();
    let out = Command::new(&tshark)
        .arg("-r")
        .arg(pcap)
        .args(["-d", &format!("tcp.port=={port},soupbintcp")])
        // Our pcap writer computes real checksums: have tshark verify them.
        .args(["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"])
        .args(output)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", tshark.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed on {} ({}): {stderr}", pcap.display(), out.status);
    String::from_utf8(out.stdout).expect("tshark output is UTF-8")
}

/// Runs tshark on `pcap` with `tcp.port == port` decoded as SoupBinTCP and
/// returns what it decoded, without judging it.
///
/// # Panics
/// If tshark is missing, fails, or prints something that is not its JSON.
pub fn decode(pcap: &Path, port: u16) -> Decoded {
    let text = run_tshark(pcap, port, &["-T", "json"]);
    let json = Json::parse(&text).unwrap_or_else(|e| panic!("tshark printed unparsable JSON ({e}): {text:.2000}"));
    let Json::Arr(packets) = json else { panic!("tshark JSON is not an array: {text:.2000}") };
    let mut decoded = Decoded { port, ..Decoded::default() };
    for packet in &packets {
        read_packet(packet, port, &mut decoded);
    }
    // Sequence numbers are only in the text tree: one "SoupBinTCP, ..."
    // header per packet, in the same order as the JSON layers.
    let verbose = run_tshark(pcap, port, &["-V"]);
    let mut seqs: Vec<Option<u64>> = Vec::new();
    for line in verbose.lines() {
        if line.starts_with("SoupBinTCP, ") {
            seqs.push(None);
        } else if let (Some(last), Some(rest)) = (seqs.last_mut(), line.strip_prefix("    ")) {
            for label in ["Requested sequence number: ", "Next sequence number: ", "Sequence number: "] {
                if let Some(v) = rest.strip_prefix(label) {
                    *last = v.split(' ').next().and_then(|n| n.parse().ok());
                }
            }
        }
    }
    if seqs.len() == decoded.pdus.len() {
        for (p, s) in decoded.pdus.iter_mut().zip(seqs) {
            p.seq_num = s;
        }
    }
    decoded
}

/// OUCH 4.2 message types of PROTOCOL §3 and §4 with their exact lengths, per
/// direction (`U` is Replace Order inbound, Replaced outbound).
const OUCH42_INBOUND: &[(char, usize)] = &[('O', 49), ('U', 47), ('X', 19)];
/// See [`OUCH42_INBOUND`].
const OUCH42_OUTBOUND: &[(char, usize)] =
    &[('S', 10), ('A', 66), ('U', 80), ('C', 28), ('E', 40), ('J', 24), ('I', 23)];

impl Decoded {
    /// Everything wrong with the capture, one line each (see
    /// [`assert_tshark_clean`]); expert infos whose field is in `allowed`
    /// are not counted.
    pub fn problems(&self, allowed: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        for e in self.experts.iter().filter(|e| e.severity == "Error" && !allowed.contains(&e.field.as_str())) {
            problems.push(format!("frame {}: expert Error [{}]: {}", e.frame, e.field, e.message));
        }
        for f in &self.malformed {
            if !allowed.contains(&"_ws.malformed") {
                problems.push(format!("frame {f}: malformed packet"));
            }
        }
        if self.pdus.is_empty() {
            problems.push(format!("no SoupBinTCP packet decoded on tcp port {}", self.port));
        }
        for p in &self.pdus {
            let t = p.soup_type();
            let allowed_types = if p.to_server { "LURO+" } else { "AJSHZ+" };
            if !allowed_types.contains(t) {
                problems.push(format!("frame {}: SoupBinTCP type {t:?} in the wrong direction or unknown", p.frame));
            }
            if t != 'S' && t != 'U' {
                continue;
            }
            let first = p.data.as_ref().and_then(|d| d.first().copied());
            let extension = p.to_server && !p.has_ouch && first.is_some_and(|b| b.is_ascii_lowercase());
            if p.ouch_field("ouch.unknown_message").is_some() || (!p.has_ouch && !extension) {
                problems.push(format!("frame {}: {t} payload not decoded as OUCH: {p:?}", p.frame));
                continue;
            }
            if let Some(ot) = p.ouch_type() {
                let table = if p.to_server { OUCH42_INBOUND } else { OUCH42_OUTBOUND };
                let want = table.iter().find(|(c, _)| *c == ot).map(|(_, n)| *n);
                if want.is_none() || want != p.payload_len() {
                    problems.push(format!(
                        "frame {}: OUCH {ot:?} of {:?} bytes {} is not an OUCH 4.2 message of PROTOCOL §3-§4",
                        p.frame,
                        p.payload_len(),
                        if p.to_server { "to the server" } else { "to the client" },
                    ));
                }
            }
        }
        problems
    }
}

/// Runs tshark on `pcap` (a capture of SoupBinTCP on TCP `port`) and checks
/// that it is clean, then returns the decoded packets for field checks:
///
/// - no expert info of severity Error, and no malformed frame;
/// - at least one SoupBinTCP packet, each of a type allowed in its direction;
/// - every Sequenced (`S`) and Unsequenced (`U`) Data packet was recognised
///   as OUCH by Wireshark's dissector (which goes by type letter and
///   length), as an OUCH 4.2 message of PROTOCOL §3-§4 of exactly its 4.2
///   length (Wireshark also takes the shorter 4.0/4.1 forms of `O`, `A`,
///   `U`), except inbound carbon extension messages (lowercase type
///   letters, unknown to OUCH).
///
/// # Panics
/// On any of the above, listing every problem, or if tshark is missing.
pub fn assert_tshark_clean(pcap: &Path, port: u16) -> Decoded {
    assert_tshark_clean_allowing(pcap, port, &[])
}

/// [`assert_tshark_clean`], not counting Error expert infos whose field
/// name is in `allowed`. For captures of third-party clients: PyPI
/// `nasdaq-protocols` left-justifies the requested sequence number, which
/// Wireshark 4.x reports as `soupbintcp.req_seq_num.invalid` (Error).
///
/// # Panics
/// As [`assert_tshark_clean`].
pub fn assert_tshark_clean_allowing(pcap: &Path, port: u16, allowed: &[&str]) -> Decoded {
    let d = decode(pcap, port);
    let problems = d.problems(allowed);
    assert!(
        problems.is_empty(),
        "tshark finds {} problem(s) in {}:\n{}",
        problems.len(),
        pcap.display(),
        problems.join("\n")
    );
    d
}

/// Adds one packet of tshark's JSON to `d`.
fn read_packet(packet: &Json, port: u16, d: &mut Decoded) {
    let layers =
        packet.get("_source").and_then(|s| s.get("layers")).expect("tshark JSON packet without _source.layers");
    let Json::Obj(layers) = layers else { panic!("layers is not an object") };
    let mut frame = 0u32;
    let mut to_server = false;
    for (name, layer) in layers {
        let mut fields = Vec::new();
        flatten(layer, &mut fields);
        match name.as_str() {
            "frame" => frame = first(&fields, "frame.number").and_then(|n| n.parse().ok()).unwrap_or(0),
            "tcp" => to_server = first(&fields, "tcp.dstport") == Some(&port.to_string()),
            "soupbintcp" => {
                let data = first(&fields, "soupbintcp.message").map(parse_hex);
                d.pdus.push(Pdu { frame, to_server, soup: fields.clone(), data, ..Pdu::default() });
            }
            "ouch" => match d.pdus.last_mut() {
                Some(p) if p.frame == frame && !p.has_ouch => {
                    p.ouch = fields.clone();
                    p.has_ouch = true;
                }
                _ => panic!("frame {frame}: an OUCH layer without its SoupBinTCP packet"),
            },
            "data" => {
                if let Some(p) = d.pdus.last_mut().filter(|p| p.frame == frame && !p.has_ouch && p.data.is_none()) {
                    p.data = first(&fields, "data.data").map(parse_hex);
                }
            }
            _ => {}
        }
        // A malformed-packet layer (a dissector hit an exception). Fields
        // reported invalid also carry a `_ws.malformed` string, but always
        // with their own Error expert info, which is what is judged.
        if name == "_ws.malformed" {
            d.malformed.push(frame);
        }
        collect_experts(layer, frame, &mut d.experts);
    }
}

/// `62:0a:ff` (tshark's bytes) to bytes.
fn parse_hex(s: &str) -> Vec<u8> {
    s.split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect()
}

/// Finds every `_ws.expert` object under `v`.
fn collect_experts(v: &Json, frame: u32, out: &mut Vec<Expert>) {
    match v {
        Json::Obj(members) => {
            let sev = members.iter().find(|(k, _)| k == "_ws.expert.severity").and_then(|(_, v)| v.as_str());
            if let Some(sev) = sev {
                let message =
                    members.iter().find(|(k, _)| k == "_ws.expert.message").and_then(|(_, v)| v.as_str()).unwrap_or("");
                let field = members.iter().find(|(k, _)| !k.starts_with("_ws.expert.")).map(|(k, _)| k.clone());
                out.push(Expert {
                    frame,
                    severity: severity_name(sev),
                    message: message.to_string(),
                    field: field.unwrap_or_default(),
                });
            }
            for (_, m) in members {
                collect_experts(m, frame, out);
            }
        }
        Json::Arr(items) => items.iter().for_each(|m| collect_experts(m, frame, out)),
        _ => {}
    }
}

/// tshark's JSON gives the severity as the raw `PI_*` value.
fn severity_name(raw: &str) -> String {
    match raw {
        "2097152" => "Chat".into(),
        "4194304" => "Note".into(),
        "6291456" => "Warning".into(),
        "8388608" => "Error".into(),
        "1048576" => "Comment".into(),
        other => other.into(),
    }
}

/// Flattens a layer to `(field, value)` pairs in tree order (sub-trees,
/// `*_tree` objects, are walked; repeated fields all kept).
fn flatten(v: &Json, out: &mut Vec<(String, String)>) {
    if let Json::Obj(members) = v {
        for (k, m) in members {
            match m {
                Json::Obj(_) => flatten(m, out),
                Json::Arr(items) => {
                    for i in items {
                        match i.as_str() {
                            Some(s) => out.push((k.clone(), s.to_string())),
                            None => flatten(i, out),
                        }
                    }
                }
                _ => {
                    if let Some(s) = m.as_str() {
                        out.push((k.clone(), s.to_string()));
                    }
                }
            }
        }
    }
}

/// Why a JSON text did not parse, and where.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The grammar wanted something else here (a value, a quote, a comma
    /// or closing bracket, a literal).
    #[error("expected {expected} at byte {at}")]
    Expected {
        /// What the grammar allows at this point.
        expected: &'static str,
        /// Byte offset in the text.
        at: usize,
    },
    /// Text follows the one value.
    #[error("trailing data at byte {0}")]
    Trailing(usize),
    /// The text ends inside a string.
    #[error("unterminated string at byte {0}")]
    Unterminated(usize),
    /// A backslash escape that JSON does not have, or a bad `\u` escape.
    #[error("bad escape at byte {0}")]
    Escape(usize),
    /// A string's bytes are not UTF-8.
    #[error("string is not UTF-8 at byte {0}")]
    NotUtf8(usize),
}

/// A JSON value; objects keep their members in order, duplicates included
/// (tshark repeats a layer key when a frame holds several packets).
#[derive(Clone, Debug)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Num(String),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole JSON text.
    pub fn parse(text: &str) -> Result<Json, JsonError> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(JsonError::Trailing(p.i));
        }
        Ok(v)
    }

    /// The first member called `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A string's or number's text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) | Json::Num(s) => Some(s),
            _ => None,
        }
    }
}

/// A recursive-descent JSON parser over bytes.
struct Parser<'a> {
    /// The text.
    s: &'a [u8],
    /// Current position.
    i: usize,
}

impl Parser<'_> {
    /// Skips whitespace.
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// "Expected `expected`" at the current position.
    fn expected(&self, expected: &'static str) -> JsonError {
        JsonError::Expected { expected, at: self.i }
    }

    /// Consumes `b` (after whitespace) or fails.
    fn expect(&mut self, b: u8, name: &'static str) -> Result<(), JsonError> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.expected(name))
        }
    }

    /// Any value.
    fn value(&mut self) -> Result<Json, JsonError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                Ok(Json::Num(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()))
            }
            _ => Err(self.expected("a value")),
        }
    }

    /// A keyword.
    fn literal(&mut self, word: &'static str, v: Json) -> Result<Json, JsonError> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.expected(word))
        }
    }

    /// An object.
    fn object(&mut self) -> Result<Json, JsonError> {
        self.expect(b'{', "'{'")?;
        let mut members = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Obj(members));
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.expect(b':', "':'")?;
            members.push((k, self.value()?));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Obj(members));
                }
                _ => return Err(self.expected("',' or '}'")),
            }
        }
    }

    /// An array.
    fn array(&mut self) -> Result<Json, JsonError> {
        self.expect(b'[', "'['")?;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                _ => return Err(self.expected("',' or ']'")),
            }
        }
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.s.get(self.i..self.i + 4).and_then(|h| std::str::from_utf8(h).ok());
        let v = digits.and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or(JsonError::Escape(self.i))?;
        self.i += 4;
        Ok(v)
    }

    /// A string (the opening quote is at the current position).
    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"', "'\"'")?;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else { return Err(JsonError::Unterminated(self.i)) };
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|_| JsonError::NotUtf8(self.i)),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return Err(JsonError::Unterminated(self.i)) };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xd800..0xdc00).contains(&cp) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            char::from_u32(cp).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(JsonError::Escape(self.i)),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }
}
