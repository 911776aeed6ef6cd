//! Configuration: the whole TOML schema of SPEC §3 (with §10's limits), parsed and
//! validated when it is loaded, one section at a time.
//!
//! Owns: reading the file, its syntax errors, unknown-key rejection, the order in which
//! sections are checked, and locating messages as `FILE:LINE: KEY: message` (the
//! [`KeyLocator`] of [`keys`], kept in [`Config`] so that a problem found later with a
//! value, a zone file that cannot be read or an address that cannot be bound, names its
//! file, line and key the same way). Each section lives in a file of its own, with the
//! section as written (its defaults), its typed form and its checks: [`listen`]
//! (`[sip]`, `[dns]`, `[admin]`), [`dialplan`], [`lookup`] (`[enum]`, `[cache]`),
//! [`gateway`], [`zones`] (`[[zone]]`, `[[catalog]]`, `[store]`), [`tsig`] (`[[tsig]]`)
//! [`log`] (`[log]`, `[metrics]`) and [`registrar`] (`[registrar]`);
//! [`value`] has what they share. A rule applied elsewhere is a type that parses,
//! checks and applies itself: [`DialRule`], [`gateway::Template`], and
//! [`crate::naptr::enumservice::Enumservice`] (enumservices belong to NAPTR).
//!
//! A new key: a field (with its default) in its section's `Raw…` struct, a field in the
//! section's typed form, and its check in that section's `from_raw`, which reports a
//! problem as `invalid("section.key", message)`; a new section: a file like those, a
//! field in `RawConfig` and [`Config`], and one line in `Config::from_raw`.
//!
//! Must not touch: anything that acts on the values. Listeners, zones and the router
//! take the validated [`Config`] and never re-parse text. Nothing here imports the
//! layers that use it (`resolve`, `sip`, `dns`, `admin`, `keeper`, `server`).

pub mod dialplan;
pub mod gateway;
pub mod keys;
pub mod listen;
pub mod log;
pub mod lookup;
pub mod registrar;
pub mod tsig;
pub mod value;
pub mod zones;

pub use dialplan::{DialRule, DialplanConfig, MAX_DIGITS_LIMIT};
pub use gateway::GatewayConfig;
pub use keys::KeyLocator;
pub use listen::{AdminConfig, DnsConfig, Listen, SipConfig, TlsConfig, Transport};
pub use log::{LogConfig, LogFormat, check_log_level};
pub use lookup::{CacheConfig, EnumConfig, OnFailure};
pub use registrar::{DigestAlgorithm, RegistrarConfig};
pub use tsig::{TsigAlgorithm, TsigKey};
pub use value::ConfigError;
pub use zones::{CatalogConfig, ZoneConfig, ZoneSource};

use crate::name::Name;
use value::{one_line, resolve_path};

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// The key serde names in "unknown field `KEY`, expected …".
fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The file as written (every key optional, defaults per SPEC §3).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    sip: listen::RawSip,
    dialplan: dialplan::RawDialplan,
    #[serde(rename = "enum")]
    enum_: lookup::RawEnum,
    cache: CacheConfig,
    gateway: Vec<gateway::RawGateway>,
    dns: listen::RawDns,
    zone: Vec<zones::RawZone>,
    catalog: Vec<zones::RawCatalog>,
    tsig: Vec<tsig::RawTsig>,
    admin: listen::RawAdmin,
    store: zones::RawStore,
    log: log::RawLog,
    metrics: log::RawMetrics,
    registrar: registrar::RawRegistrar,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    pub sip: SipConfig,
    pub dialplan: DialplanConfig,
    pub enum_: EnumConfig,
    pub cache: CacheConfig,
    pub gateways: Vec<GatewayConfig>,
    pub dns: DnsConfig,
    pub zones: Vec<ZoneConfig>,
    /// `[[catalog]]`: catalog zones followed as a secondary (RFC 9432).
    pub catalogs: Vec<CatalogConfig>,
    /// `[[tsig]]`: the keys that `dns.transfer_key`, `zone[i].key` and `catalog[i].key`
    /// name.
    pub tsig: Vec<TsigKey>,
    pub admin: AdminConfig,
    pub store: PathBuf,
    pub log: LogConfig,
    /// `metrics.enabled`: count and serve `/metrics` (default true).
    pub metrics_enabled: bool,
    /// `[registrar]`: REGISTER, digest authentication and the location service.
    pub registrar: RegistrarConfig,
    /// Where each key was written in [`Config::file`], for messages about its values.
    pub keys: KeyLocator,
}

impl Config {
    /// The configuration with no file at all (SPEC §10.2 and §10.23): no zones, no
    /// gateways, no dial-plan rules, paths relative to the working directory.
    pub fn builtin() -> Config {
        // The file defaults (`../data/…`) are relative to `config/`; with no file they
        // are `data/…` under the working directory (joining `config/..` would create an
        // empty `config/` directory there).
        let mut raw = RawConfig::default();
        raw.admin.token_file = "data/admin.token".into();
        raw.store.path = "data/enroute.db".into();
        Self::from_raw(raw, Path::new(""), None).expect("built-in defaults are valid")
    }

    /// The `[[tsig]]` key called `name` (case-insensitive), as the other sections name
    /// them; every name they hold is one of these (checked when loading).
    pub fn tsig_key(&self, name: &Name) -> Option<&TsigKey> {
        self.tsig.iter().find(|k| k.name.eq_ignore_case(name))
    }

    /// A problem with one of this configuration's values found after it loaded (a file
    /// it names cannot be read, an address cannot be bound), as `FILE:LINE: KEY: message`.
    pub fn value_error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.keys.error(key, message)
    }

    /// Reads and validates a file. Relative paths inside are relative to its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: path.display().to_string(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base, Some(path))
    }

    /// Parses TOML text; `display` names it in messages; paths resolve against `base`.
    pub fn parse(
        text: &str,
        display: &str,
        base: &Path,
        file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let line_of = |offset: usize| line_at(text, offset);
        let table = toml::de::DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            file: display.to_string(),
            line: e.span().map_or(1, |s| line_of(s.start)),
            message: one_line(e.message()),
        })?;
        let keys = KeyLocator::from_table(display, text, &table);
        let de = toml::Deserializer::from(table);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let location = match inner.span() {
                Some(s) => format!("{display}:{}: ", line_of(s.start)),
                None => keys.location(&path),
            };
            let msg = one_line(inner.message());
            let (key, message) = match unknown_field(&msg) {
                Some(field) => (
                    if path == "." || path.is_empty() {
                        field.to_string()
                    } else if path == field || path.ends_with(&format!(".{field}")) {
                        path.clone()
                    } else {
                        format!("{path}.{field}")
                    },
                    format!(
                        "unknown key{}",
                        msg.split_once(", expected")
                            .map_or(String::new(), |(_, rest)| format!(" (expected{rest})"))
                    ),
                ),
                None => (path, msg),
            };
            ConfigError::Invalid {
                location,
                key,
                message,
            }
        })?;
        let mut config = Self::from_raw(raw, base, file).map_err(|e| match e {
            ConfigError::Invalid { key, message, .. } => keys.error(&key, message),
            other => other,
        })?;
        config.keys = keys;
        Ok(config)
    }

    /// One section at a time, always in this order, so that the first problem
    /// reported stays the same whatever else is wrong.
    fn from_raw(raw: RawConfig, base: &Path, file: Option<&Path>) -> Result<Config, ConfigError> {
        let sip = SipConfig::from_raw(raw.sip, base)?;
        let dialplan = DialplanConfig::from_raw(raw.dialplan)?;
        let enum_ = EnumConfig::from_raw(raw.enum_)?;
        let cache = raw.cache.checked()?;
        let gateways = GatewayConfig::from_raw_list(&raw.gateway)?;
        let tsig = TsigKey::from_raw_list(&raw.tsig, base)?;
        let dns = DnsConfig::from_raw(raw.dns, &tsig)?;
        let zones = ZoneConfig::from_raw_list(&raw.zone, base, &tsig)?;
        zones::catalog_zone_apart(dns.catalog_zone.as_ref(), &zones)?;
        let catalogs =
            CatalogConfig::from_raw_list(&raw.catalog, &zones, dns.catalog_zone.as_ref(), &tsig)?;
        let admin = AdminConfig::from_raw(raw.admin, base)?;
        let log = LogConfig::from_raw(raw.log)?;
        let registrar = RegistrarConfig::from_raw(raw.registrar)?;
        Ok(Config {
            file: file.map(Path::to_path_buf),
            sip,
            dialplan,
            enum_,
            cache,
            gateways,
            dns,
            zones,
            catalogs,
            tsig,
            admin,
            store: resolve_path(base, &raw.store.path),
            metrics_enabled: raw.metrics.enabled,
            registrar,
            keys: KeyLocator::default(),
            log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml", Path::new("/etc/enroute"), None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "t.toml", Path::new("/etc/enroute"), None).unwrap();
        assert_eq!(c.sip.max_contacts, 10);
        assert_eq!(c.enum_.suffixes[0].to_string(), "e164.arpa.");
        assert_eq!(c.store, Path::new("/etc/enroute/../data/enroute.db"));
        assert_eq!(c.sip.max_message_bytes, 65535);
        assert_eq!(c.enum_.on_failure, OnFailure::Gateway);
    }

    #[test]
    fn no_file_puts_data_under_the_working_directory() {
        let c = Config::builtin();
        assert_eq!(c.store, Path::new("data/enroute.db"));
        assert_eq!(c.admin.token_file, Path::new("data/admin.token"));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            err("[sip]\nlisten = [\"udp:127.0.0.1:5060\", \"bogus\"]\n"),
            "t.toml:2: sip.listen[1]: expected \"udp:IP:PORT\", \"tcp:IP:PORT\" or \"tls:IP:PORT\", got \"bogus\""
        );
        let e = err("[sip]\nlisten_on = []\n");
        assert!(e.starts_with("t.toml:2: sip.listen_on: unknown key"), "{e}");
        let e = err("[enum]\non_failure = \"retry\"\n");
        assert!(e.contains("enum.on_failure"), "{e}");
        let e = err("[[gateway]]\nprefix = \"44\"\nuris = [\"sip:x@y\"]\n");
        assert!(e.contains("gateway[0].prefix"), "{e}");
        let e = err("[[gateway]]\nprefix = \"+44\"\nuris = [\"sip:{nope}@y\"]\n");
        assert!(
            e.contains("gateway[0].uris[0]") && e.contains("{nope}"),
            "{e}"
        );
        let e = err("[dialplan]\nrules = [{ match = '^(0', replace = '+$1' }]\n");
        assert!(e.contains("dialplan.rules[0].match"), "{e}");
        let e = err("[dialplan]\nmin_digits = 5\nmax_digits = 4\n");
        assert!(e.contains("dialplan.max_digits"), "{e}");
        let e = err("[sip]\n\n[[zone]]\nfile = \"a\"\n");
        assert!(
            e.starts_with("t.toml:3: zone[0]") && e.contains("origin"),
            "{e}"
        );
        let e = err("[sip]\nmax_contacts = -1\n");
        assert!(e.starts_with("t.toml:2: sip.max_contacts: "), "{e}");
        let e = err("[sip]\n[sip.tls]\ncert = \"c\"\n");
        assert!(
            e.starts_with("t.toml:2: sip.tls") && e.contains("key"),
            "{e}"
        );
        let e = err("[[zone]]\norigin = \"e164.arpa.\"\nfile = \"a\"\nprimary = \"x\"\n");
        assert!(e.starts_with("t.toml:1: zone[0]: set either"), "{e}");
        let e = err("[sip]\nmax_contacts = \"ten\"\n");
        assert!(e.contains("sip.max_contacts"), "{e}");
        let e = err("[sip\n");
        assert!(e.starts_with("t.toml:1:"), "{e}");
        let e = err("bogus = 1\n");
        assert!(e.contains("bogus: unknown key"), "{e}");
        let e = err("[enum]\nservices = [\"sip\"]\n");
        assert!(e.contains("enum.services[0]"), "{e}");
    }

    #[test]
    fn value_errors_carry_the_line_of_their_key() {
        let text = "# enroute\n\n[sip]\nlisten = [\n  \"udp:127.0.0.1:5060\",\n  \"udp:127.0.0.1\",\n]\n\n\
                    [dialplan]\nrules = [\n  { match = '^0', replace = '+44' },\n  { match = '^(0', replace = '+$1' },\n]\n";
        let e = err(text);
        assert!(e.starts_with("t.toml:6: sip.listen[1]: "), "{e}");
        let e = err(&text.replace("\"udp:127.0.0.1\"", "\"udp:127.0.0.1:5061\""));
        assert!(
            e.starts_with("t.toml:12: dialplan.rules[1].match: invalid regex"),
            "{e}"
        );
        // A key the file does not write: the line of its table, else line 1.
        let e = err(
            "[sip]\nmax_contacts = 1\n\n[[zone]]\norigin = \"x\"\nfile = \"a\"\n\n[[zone]]\norigin = \"x\"\nfile = \"b\"\n",
        );
        assert!(e.starts_with("t.toml:9: zone[1].origin: "), "{e}");
        let e = err("\n[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\n");
        assert!(e.starts_with("t.toml:2: sip.tls: "), "{e}");
        let e = err("\n[dialplan]\nmin_digits = 0\n");
        assert!(e.starts_with("t.toml:3: dialplan.min_digits: "), "{e}");
    }

    #[test]
    fn the_locator_finds_keys_elements_and_tables() {
        let text = "[sip]\nlisten = [\n  \"a\",\n  \"b\",\n]\n[sip.tls]\ncert = \"c\"\n\n[[zone]]\norigin = \"o\"\n\n[[zone]]\norigin = \"p\"\nfile = \"f\"\n";
        let keys = KeyLocator::new("e.toml", text);
        assert_eq!(keys.line("sip"), 1);
        assert_eq!(keys.line("sip.listen"), 2);
        assert_eq!(keys.line("sip.listen[1]"), 4);
        assert_eq!(keys.line("sip.tls.cert"), 7);
        assert_eq!(keys.line("sip.tls.key"), 6, "absent: its table's header");
        assert_eq!(keys.line("sip.allow[0]"), 1, "absent: the enclosing table");
        assert_eq!(keys.line("zone[1]"), 12);
        assert_eq!(keys.line("zone[1].file"), 14);
        assert_eq!(keys.line("dns.listen[0]"), 1, "nothing written: line 1");
        assert_eq!(keys.location("zone[0].file"), "e.toml:9: ");
        assert_eq!(
            keys.error("zone[1].file", "cannot read").to_string(),
            "e.toml:14: zone[1].file: cannot read"
        );
        // The built-in defaults have no file to point into.
        let builtin = Config::builtin();
        assert_eq!(
            builtin
                .value_error("admin.listen", "cannot bind")
                .to_string(),
            "admin.listen: cannot bind"
        );
        // A loaded file keeps its locator for later messages.
        let c = Config::parse(
            text.replace("tls", "x").as_str(),
            "e.toml",
            Path::new("/e"),
            None,
        );
        assert!(c.is_err(), "sip.x is not a key");
        let c = Config::parse(
            "\n\n[[zone]]\norigin = \"o.\"\nfile = \"z\"\n",
            "e.toml",
            Path::new("/e"),
            None,
        )
        .unwrap();
        assert_eq!(
            c.value_error("zone[0].file", "cannot read").to_string(),
            "e.toml:5: zone[0].file: cannot read"
        );
        assert_eq!(c.zones[0].source, ZoneSource::File(PathBuf::from("/e/z")));
    }

    #[test]
    fn log_level_is_levels_or_target_directives() {
        for ok in [
            "info",
            "DEBUG",
            "off",
            "warn,enroute::sip=trace",
            "enroute=debug",
            "info, hickory_proto=error",
            "enroute[zone]=debug",
        ] {
            assert!(
                check_log_level(ok).is_ok(),
                "{ok}: {:?}",
                check_log_level(ok)
            );
        }
        for bad in [
            "verbose",
            "inof",
            "",
            " , ",
            "enroute",
            "enroute=loud",
            "=debug",
            "info,sip",
        ] {
            let e = check_log_level(bad).expect_err(bad);
            assert!(
                e.contains("off, error, warn, info, debug or trace"),
                "{bad}: {e}"
            );
        }
        let e = err("[log]\nlevel = \"verbose\"\n");
        assert!(
            e.starts_with("t.toml:2: log.level: \"verbose\" is not a level"),
            "{e}"
        );
    }

    #[test]
    fn a_zone_with_neither_file_nor_primary_is_store_only() {
        let c = Config::parse(
            "[[zone]]\norigin = \"9.9.9.4.4.e164.arpa.\"\n",
            "t.toml",
            Path::new("/e"),
            None,
        )
        .unwrap();
        assert_eq!(c.zones[0].source, ZoneSource::Store);
    }

    fn ok(text: &str) -> Config {
        Config::parse(text, "t.toml", Path::new("/etc/enroute"), None).unwrap()
    }

    const KEY: &str = "[[tsig]]\nname = \"xfr-key.\"\nsecret = \"c2VjcmV0LWJ5dGVz\"\n";

    #[test]
    fn replication_defaults() {
        let c = ok("");
        assert_eq!(c.dns.journal_max_changes, 10_000);
        assert_eq!(c.dns.catalog_zone, None);
        assert_eq!(c.dns.transfer_key, None);
        assert!(c.tsig.is_empty() && c.catalogs.is_empty());
        let c = ok("[dns]\njournal_max_changes = 0\ncatalog_zone = \"Catalog.Example.NET\"\n");
        assert_eq!(c.dns.journal_max_changes, 0, "0 keeps no journal");
        assert_eq!(
            c.dns.catalog_zone.unwrap().to_string(),
            "Catalog.Example.NET."
        );
    }

    #[test]
    fn replication_keys_are_checked() {
        let e = err("[dns]\njournal_max_changes = -1\n");
        assert!(e.starts_with("t.toml:2: dns.journal_max_changes: "), "{e}");
        let e = err("[dns]\ncatalog_zone = \"a..b\"\n");
        assert!(e.starts_with("t.toml:2: dns.catalog_zone: "), "{e}");
        let e = err("[dns]\ncatalog_zone = \".\"\n");
        assert!(e.contains("dns.catalog_zone: the root"), "{e}");
        let e = err("[dns]\ncatalog_zone = \"cat.\"\n[[zone]]\norigin = \"CAT.\"\n");
        assert!(
            e.starts_with("t.toml:2: dns.catalog_zone: ") && e.contains("zone[0].origin"),
            "{e}"
        );
        let e = err("[dns]\ntransfer_key = \"nokey.\"\n");
        assert!(
            e.starts_with("t.toml:2: dns.transfer_key: no [[tsig]] is named nokey."),
            "{e}"
        );
        let c = ok(&format!("[dns]\ntransfer_key = \"XFR-key\"\n{KEY}"));
        let name = c.dns.transfer_key.clone().unwrap();
        assert_eq!(name.to_string(), "xfr-key.", "the [[tsig]] spelling");
        assert_eq!(c.tsig_key(&name).unwrap().secret, b"secret-bytes");
        assert!(
            c.tsig_key(&Name::from_text("XFR-KEY.").unwrap()).is_some(),
            "looked up in any case"
        );
        assert!(c.tsig_key(&Name::from_text("other.").unwrap()).is_none());
    }

    #[test]
    fn tsig_keys_are_checked() {
        let c = ok(&format!(
            "{KEY}[[tsig]]\nname = \"b\"\nalgorithm = \"HMAC-SHA512\"\nsecret = \"AAAA\"\n"
        ));
        assert_eq!(
            c.tsig[0].algorithm,
            TsigAlgorithm::HmacSha256,
            "the default"
        );
        assert_eq!(c.tsig[1].algorithm, TsigAlgorithm::HmacSha512);
        assert_eq!(c.tsig[1].secret, [0, 0, 0]);
        let e = err(&format!(
            "{KEY}[[tsig]]\nname = \"XFR-KEY.\"\nsecret = \"AAAA\"\n"
        ));
        assert!(
            e.starts_with("t.toml:5: tsig[1].name: ") && e.contains("twice"),
            "{e}"
        );
        let e = err("[[tsig]]\nname = \"k\"\nalgorithm = \"hmac-md5\"\nsecret = \"AAAA\"\n");
        assert!(
            e.starts_with("t.toml:3: tsig[0].algorithm: \"hmac-md5\""),
            "{e}"
        );
        let e = err("[[tsig]]\nname = \"k\"\nsecret = \"not base64!\"\n");
        assert!(
            e.starts_with("t.toml:3: tsig[0].secret: is not base64"),
            "{e}"
        );
        assert!(
            !e.contains("not base64!"),
            "the secret is not repeated: {e}"
        );
        let e = err("[[tsig]]\nname = \"k\"\nsecret = \"\"\n");
        assert!(e.starts_with("t.toml:3: tsig[0].secret: is empty"), "{e}");
        let e = err("[[tsig]]\nname = \"k\"\n");
        assert!(e.starts_with("t.toml:1: tsig[0]: needs secret"), "{e}");
        let e = err("[[tsig]]\nname = \"k\"\nsecret = \"AAAA\"\nsecret_file = \"f\"\n");
        assert!(e.starts_with("t.toml:1: tsig[0]: set either"), "{e}");
        let e = err("[[tsig]]\nsecret = \"AAAA\"\n");
        assert!(e.contains("tsig[0]") && e.contains("name"), "{e}");
        let e = err("[[tsig]]\nname = \"a..b\"\nsecret = \"AAAA\"\n");
        assert!(e.starts_with("t.toml:2: tsig[0].name: "), "{e}");
    }

    #[test]
    fn a_secret_file_is_relative_to_the_config_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.b64"), "  c2VjcmV0LWJ5dGVz\n").unwrap();
        let text = "[[tsig]]\nname = \"k\"\nsecret_file = \"k.b64\"\n";
        let c = Config::parse(text, "t.toml", dir.path(), None).unwrap();
        assert_eq!(c.tsig[0].secret, b"secret-bytes");
        let text = text.replace("k.b64", "missing");
        let e = Config::parse(&text, "t.toml", dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.toml:3: tsig[0].secret_file: cannot read ") && e.contains("missing"),
            "{e}"
        );
    }

    #[test]
    fn zone_and_catalog_keys_name_a_tsig() {
        let c = ok(&format!(
            "{KEY}[[zone]]\norigin = \"4.4.e164.arpa.\"\nprimary = \"192.0.2.10:53\"\nkey = \"xfr-key.\"\n\
             [[catalog]]\norigin = \"catalog.example.net.\"\nprimary = \"[2001:db8::1]:53\"\nkey = \"xfr-key\"\n\
             [[catalog]]\norigin = \"other.example.net.\"\nprimary = \"192.0.2.11:53\"\n"
        ));
        assert_eq!(c.zones[0].key.as_ref().unwrap().to_string(), "xfr-key.");
        assert_eq!(c.catalogs[0].origin.to_string(), "catalog.example.net.");
        assert_eq!(c.catalogs[0].primary, "[2001:db8::1]:53".parse().unwrap());
        assert_eq!(c.catalogs[0].key, c.zones[0].key);
        assert_eq!(c.catalogs[1].key, None);
        let e = err(&format!(
            "{KEY}[[zone]]\norigin = \"o.\"\nfile = \"f\"\nkey = \"xfr-key.\"\n"
        ));
        assert!(
            e.starts_with("t.toml:7: zone[0].key: only a zone with primary"),
            "{e}"
        );
        let e = err("[[zone]]\norigin = \"o.\"\nkey = \"xfr-key.\"\n");
        assert!(e.contains("zone[0].key: only a zone with primary"), "{e}");
        let e = err("[[zone]]\norigin = \"o.\"\nprimary = \"192.0.2.1:53\"\nkey = \"k.\"\n");
        assert!(
            e.starts_with("t.toml:4: zone[0].key: no [[tsig]] is named k."),
            "{e}"
        );
        let e = err("[[catalog]]\norigin = \"c.\"\nprimary = \"192.0.2.1:53\"\nkey = \"k.\"\n");
        assert!(
            e.starts_with("t.toml:4: catalog[0].key: no [[tsig]]"),
            "{e}"
        );
        let e = err("[[catalog]]\norigin = \"c.\"\nprimary = \"192.0.2.1\"\n");
        assert!(e.starts_with("t.toml:3: catalog[0].primary: "), "{e}");
        let e = err("[[catalog]]\norigin = \"c.\"\n");
        assert!(e.contains("catalog[0]") && e.contains("primary"), "{e}");
        let twice = "[[catalog]]\norigin = \"c.\"\nprimary = \"192.0.2.1:53\"\n";
        let e = err(&format!("{twice}{twice}"));
        assert!(
            e.starts_with("t.toml:5: catalog[1].origin: c. is configured twice"),
            "{e}"
        );
        let e = err(&format!("[[zone]]\norigin = \"C.\"\n{twice}"));
        assert!(
            e.contains("catalog[0].origin: c. is also zone[0].origin"),
            "{e}"
        );
        let e = err(&format!("[dns]\ncatalog_zone = \"c.\"\n{twice}"));
        assert!(
            e.contains("catalog[0].origin: c. is also dns.catalog_zone"),
            "{e}"
        );
    }
}
