//! Quayside's one typed configuration, read from a Quay-style `config.yaml`.
//!
//! Rules:
//! - With no file at all Quayside runs on an embedded default: SQLite and a blob directory under
//!   `--data-dir` (default `./data`), listening on `--listen` (default `127.0.0.1:8080`).
//! - A file uses Quay's keys (`SERVER_HOSTNAME`, `DB_URI`, `DISTRIBUTED_STORAGE_CONFIG`, `FEATURE_*`,
//!   ...), so an existing Quay bundle works. Unknown keys are accepted and kept in [`Config::raw`]
//!   (bundles carry many); a known key with an invalid value fails with an error naming the key.
//! - `ssl.cert` / `ssl.key` next to the file turn on HTTPS.
//!
//! Size: about 700 lines of code and 150 of unit tests. Every Quay key the registry reads is
//! parsed and checked here, so a key is found (and its error message kept) in one file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
/// Quay's default time-machine window: two weeks.
pub const DEFAULT_TAG_EXPIRATION_S: i64 = 14 * 24 * 3600;

/// A configuration problem, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlScheme {
    Http,
    Https,
}

impl UrlScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlScheme::Http => "http",
            UrlScheme::Https => "https",
        }
    }
}

/// Where blob bytes live.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A local directory (`LocalStorage`, and the embedded default).
    Local { path: PathBuf },
    /// An S3-compatible object store (`S3Storage`, `RadosGWStorage`).
    S3(S3Config),
}

#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// Full endpoint URL (`http(s)://host:port`), or `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// Key prefix inside the bucket (Quay's `storage_path`, without leading `/`).
    pub prefix: String,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::Local { path } => write!(f, "Local({})", path.display()),
            StorageConfig::S3(s) => write!(
                f,
                "S3(bucket={}, endpoint={:?}, region={}, prefix={:?})",
                s.bucket, s.endpoint, s.region, s.prefix
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Feature flags (`FEATURE_*`).
#[derive(Clone, Debug)]
pub struct Features {
    /// Accept OCI artifacts of any config media type (Helm charts, signatures, SBOMs...).
    pub general_oci_support: bool,
    /// `POST /api/v1/user/initialize` creates the first superuser while no user exists.
    pub user_initialize: bool,
    /// Users may be created (through the API) at all.
    pub user_creation: bool,
    /// `FEATURE_MAILING`: e-mail may be sent (with `MAIL_SERVER` set, team members are invited).
    pub mailing: bool,
    /// `FEATURE_REQUIRE_TEAM_INVITE`: with mail configured, users who are not yet members of
    /// the organization join a team by accepting an invitation.
    pub require_team_invite: bool,
}

/// Outgoing mail (`MAIL_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailConfig {
    pub server: String,
    pub port: u16,
    pub default_sender: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `SERVER_HOSTNAME`: the public host (and optional port) clients use. When absent the
    /// `Host` header of each request is used.
    pub server_hostname: Option<String>,
    pub url_scheme: UrlScheme,
    /// An sqlx URL: `sqlite://...` or `postgres://...`.
    pub database_url: String,
    pub storage: StorageConfig,
    /// `STORAGE_START_WAIT_SECONDS` (a Quayside extension, default 30): how long a start waits
    /// for the blob storage to answer before it exits (see `server::Unavailable`).
    pub storage_start_wait: std::time::Duration,
    pub features: Features,
    pub super_users: Vec<String>,
    /// `USER_INITIALIZE_TOKEN` (a Quayside extension): when set, `/api/v1/user/initialize`
    /// creates the first user only for a request carrying this token (`initialize_token`), so
    /// whoever deployed the registry (the operator) claims it without a window.
    pub user_initialize_token: Option<String>,
    pub tls: Option<TlsFiles>,
    /// `SECRET_KEY`: when set, token signing keys derive from it (all replicas agree). Otherwise
    /// a random key is generated once and kept in the database.
    pub secret_key: Option<String>,
    pub tag_expiration_options: Vec<String>,
    pub default_tag_expiration_s: i64,
    /// `ROBOTS_DISALLOW`: robot accounts can be neither created nor used.
    pub robots_disallow: bool,
    /// `ROBOTS_WHITELIST`: robots that may still log in when robots are disallowed.
    pub robots_whitelist: Vec<String>,
    /// `SSRF_ALLOWED_HOSTS`: hosts, IP addresses and CIDR blocks that outbound requests to
    /// user-chosen URLs (webhooks, export callbacks) may reach although they are not public
    /// (see `service::operations::ssrf`).
    pub ssrf_allowed_hosts: Vec<String>,
    /// `MAIL_SERVER` and friends, when mail is configured (`FEATURE_MAILING` and a server).
    pub mail: Option<MailConfig>,
    /// Idle time after which an unfinished blob upload is abandoned and cleaned.
    pub upload_expiration: Duration,
    pub gc: GcConfig,
    pub quota: QuotaConfig,
    /// Usage logs: export and rotation of the audit log.
    pub action_logs: ActionLogsConfig,
    pub notifications: NotificationConfig,
    pub mirror: MirrorConfig,
    pub app_tokens: AppTokensConfig,
    /// Builds (`FEATURE_BUILD_SUPPORT`, `BUILD_MANAGER`, `EXECUTORS`, `BUILDMAN_HOSTNAME`).
    pub builds: BuildConfig,
    /// Security scanning (`FEATURE_SECURITY_SCANNER`, `SECURITY_SCANNER_*`).
    pub scanner: ScannerConfig,
    /// `LABELED_EXPIRATION_MINIMUM` / `LABELED_EXPIRATION_MAXIMUM`: bounds of a tag expiration
    /// set through the API, counted from the start of the tag's lifetime (seconds).
    pub expiration_bounds_s: (i64, i64),
    /// Label key prefixes the API refuses (Quay's defaults plus `LABEL_KEY_RESERVED_PREFIXES`).
    pub reserved_label_prefixes: Vec<String>,
    /// The whole file as parsed, for settings later features read.
    pub raw: serde_yaml::Mapping,
}

/// Application-specific tokens (`FEATURE_APP_SPECIFIC_TOKENS` and friends).
#[derive(Clone, Debug)]
pub struct AppTokensConfig {
    /// `FEATURE_APP_SPECIFIC_TOKENS` (default on, as Quay).
    pub enabled: bool,
    /// `APP_SPECIFIC_TOKEN_EXPIRATION` (a duration such as `52w`; default: never expire).
    pub expiration_s: Option<i64>,
    /// `EXPIRED_APP_SPECIFIC_TOKEN_GC` (default `1d`): expired tokens are deleted this long
    /// after they expire.
    pub gc_window_s: i64,
}

/// Usage logs (`FEATURE_LOG_EXPORT`, `FEATURE_ACTION_LOG_ROTATION` and the `ACTION_LOG_*` keys).
#[derive(Clone, Debug)]
pub struct ActionLogsConfig {
    /// `FEATURE_LOG_EXPORT` (default on): `POST .../exportlogs` is served.
    pub export: bool,
    /// `FEATURE_ACTION_LOG_ROTATION` (default off): the `logrotation` worker moves entries older
    /// than the threshold to blob storage and deletes them from the database.
    pub rotation: bool,
    /// `ACTION_LOG_ROTATION_THRESHOLD` (a duration such as `30d`, default 30 days).
    pub rotation_threshold: Duration,
    /// `ACTION_LOG_ARCHIVE_LOCATION`: the storage location archives go to (Quayside has one
    /// blob store; the name is kept for the config bundle's sake).
    pub archive_location: Option<String>,
    /// `ACTION_LOG_ARCHIVE_PATH` (default `actionlogarchive/`): the key prefix of archives.
    pub archive_path: String,
}

/// Garbage collection and tag expiration.
#[derive(Clone, Debug)]
pub struct GcConfig {
    /// `FEATURE_GARBAGE_COLLECTION`: run the `gc` worker (expiration still ends tags).
    pub enabled: bool,
    /// `GARBAGE_COLLECTION_FREQUENCY`: seconds between passes of the `gc` worker.
    pub frequency: Duration,
    /// `PUSH_TEMP_TAG_EXPIRATION_SEC`: how long a manifest pushed without a tag, or a blob
    /// uploaded but not (yet) referenced by a manifest, is kept before it may be collected.
    pub grace: Duration,
}

/// Quota management (`FEATURE_QUOTA_MANAGEMENT` and its keys). Storage is accounted whatever
/// the flag says (so turning it on needs no recount); the flag serves the quota API, the
/// reports and enforcement.
#[derive(Clone, Debug)]
pub struct QuotaConfig {
    /// `FEATURE_QUOTA_MANAGEMENT` (default off, as in Quay).
    pub enabled: bool,
    /// `DEFAULT_SYSTEM_REJECT_QUOTA_BYTES`: pushes into a namespace without a quota of its own
    /// are refused once it uses this much. `None` (unset or 0): no default.
    pub default_reject_bytes: Option<i64>,
    /// Whether `DEFAULT_SYSTEM_REJECT_QUOTA_BYTES` was set to 0: Quay then lets organization
    /// administrators (not only superusers) create quotas and limits.
    pub default_reject_is_zero: bool,
    /// `QUOTA_BACKFILL` (default on): the worker that computes sizes of content stored before
    /// accounting existed.
    pub backfill: bool,
    /// `QUOTA_TOTAL_DELAY_SECONDS` (default 1800): how long after start the backfill waits, so
    /// a rolling deployment has finished.
    pub backfill_delay: Duration,
}

/// Repository notifications.
#[derive(Clone, Debug)]
pub struct NotificationConfig {
    /// `NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES` (Quay's, default 300): how often the
    /// `notifications` worker looks for tags entering an image-expiry window.
    pub expiry_scan_interval: Duration,
    /// `FLOWDOCK_API_URL` (a Quayside extension, default `https://api.flowdock.com`): where
    /// Flowdock notifications are posted.
    pub flowdock_api_url: String,
    /// `HIPCHAT_API_URL` (a Quayside extension, default `https://api.hipchat.com`): where HipChat
    /// notifications are posted.
    pub hipchat_api_url: String,
}

/// Repository mirroring (`FEATURE_REPO_MIRROR` and its keys).
#[derive(Clone, Debug)]
pub struct MirrorConfig {
    /// `FEATURE_REPO_MIRROR` (default off, as in Quay): the mirror API and the `mirror` worker.
    pub enabled: bool,
    /// `REPO_MIRROR_INTERVAL` (default 30): seconds between the `mirror` worker's passes.
    pub interval: Duration,
}

/// Label key prefixes Quay reserves for itself and image tooling (`DEFAULT_LABEL_KEY_RESERVED_PREFIXES`).
pub const DEFAULT_RESERVED_LABEL_PREFIXES: [&str; 12] = [
    "com.docker.",
    "io.docker.",
    "org.dockerproject.",
    "org.opencontainers.",
    "io.cncf.",
    "io.kubernetes.",
    "io.k8s.",
    "io.quay",
    "com.coreos",
    "com.tectonic",
    "internal",
    "quay",
];

/// Command-line values that take precedence over the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(rename = "SERVER_HOSTNAME")]
    server_hostname: Option<String>,
    #[serde(rename = "PREFERRED_URL_SCHEME")]
    preferred_url_scheme: Option<String>,
    #[serde(rename = "DB_URI")]
    db_uri: Option<String>,
    #[serde(rename = "DISTRIBUTED_STORAGE_CONFIG")]
    storage_config: Option<BTreeMap<String, (String, serde_yaml::Mapping)>>,
    #[serde(rename = "DISTRIBUTED_STORAGE_PREFERENCE")]
    storage_preference: Option<Vec<String>>,
    #[serde(rename = "FEATURE_GENERAL_OCI_SUPPORT")]
    feature_general_oci_support: Option<bool>,
    #[serde(rename = "FEATURE_USER_INITIALIZE")]
    feature_user_initialize: Option<bool>,
    #[serde(rename = "FEATURE_USER_CREATION")]
    feature_user_creation: Option<bool>,
    #[serde(rename = "SUPER_USERS")]
    super_users: Option<Vec<String>>,
    #[serde(rename = "USER_INITIALIZE_TOKEN")]
    user_initialize_token: Option<String>,
    #[serde(rename = "STORAGE_START_WAIT_SECONDS")]
    storage_start_wait_seconds: Option<u64>,
    #[serde(rename = "SECRET_KEY")]
    secret_key: Option<String>,
    #[serde(rename = "TAG_EXPIRATION_OPTIONS")]
    tag_expiration_options: Option<Vec<String>>,
    #[serde(rename = "DEFAULT_TAG_EXPIRATION")]
    default_tag_expiration: Option<String>,
    #[serde(rename = "QUAYSIDE_UPLOAD_EXPIRATION_S")]
    upload_expiration_s: Option<u64>,
    #[serde(rename = "FEATURE_GARBAGE_COLLECTION")]
    feature_garbage_collection: Option<bool>,
    #[serde(rename = "GARBAGE_COLLECTION_FREQUENCY")]
    garbage_collection_frequency: Option<u64>,
    #[serde(rename = "PUSH_TEMP_TAG_EXPIRATION_SEC")]
    push_temp_tag_expiration_sec: Option<u64>,
    #[serde(rename = "LABELED_EXPIRATION_MINIMUM")]
    labeled_expiration_minimum: Option<String>,
    #[serde(rename = "LABELED_EXPIRATION_MAXIMUM")]
    labeled_expiration_maximum: Option<String>,
    #[serde(rename = "LABEL_KEY_RESERVED_PREFIXES")]
    label_key_reserved_prefixes: Option<Vec<String>>,
    #[serde(rename = "ROBOTS_DISALLOW")]
    robots_disallow: Option<bool>,
    #[serde(rename = "ROBOTS_WHITELIST")]
    robots_whitelist: Option<Vec<String>>,
    #[serde(rename = "SSRF_ALLOWED_HOSTS")]
    ssrf_allowed_hosts: Option<Vec<String>>,
    #[serde(rename = "FEATURE_LOG_EXPORT")]
    feature_log_export: Option<bool>,
    #[serde(rename = "FEATURE_ACTION_LOG_ROTATION")]
    feature_action_log_rotation: Option<bool>,
    #[serde(rename = "ACTION_LOG_ROTATION_THRESHOLD")]
    action_log_rotation_threshold: Option<String>,
    #[serde(rename = "ACTION_LOG_ARCHIVE_LOCATION")]
    action_log_archive_location: Option<String>,
    #[serde(rename = "ACTION_LOG_ARCHIVE_PATH")]
    action_log_archive_path: Option<String>,
    #[serde(rename = "FEATURE_MAILING")]
    feature_mailing: Option<bool>,
    #[serde(rename = "FEATURE_REQUIRE_TEAM_INVITE")]
    feature_require_team_invite: Option<bool>,
    #[serde(rename = "FEATURE_APP_SPECIFIC_TOKENS")]
    feature_app_specific_tokens: Option<bool>,
    #[serde(rename = "APP_SPECIFIC_TOKEN_EXPIRATION")]
    app_specific_token_expiration: Option<String>,
    #[serde(rename = "EXPIRED_APP_SPECIFIC_TOKEN_GC")]
    expired_app_specific_token_gc: Option<String>,
    #[serde(rename = "MAIL_SERVER")]
    mail_server: Option<String>,
    #[serde(rename = "MAIL_PORT")]
    mail_port: Option<u16>,
    #[serde(rename = "MAIL_DEFAULT_SENDER")]
    mail_default_sender: Option<String>,
    #[serde(rename = "FEATURE_QUOTA_MANAGEMENT")]
    feature_quota_management: Option<bool>,
    #[serde(rename = "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES")]
    default_system_reject_quota_bytes: Option<serde_yaml::Value>,
    #[serde(rename = "QUOTA_BACKFILL")]
    quota_backfill: Option<bool>,
    #[serde(rename = "QUOTA_TOTAL_DELAY_SECONDS")]
    quota_total_delay_seconds: Option<serde_yaml::Value>,
    #[serde(rename = "NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES")]
    notification_task_run_minimum_interval_minutes: Option<serde_yaml::Value>,
    #[serde(rename = "FLOWDOCK_API_URL")]
    flowdock_api_url: Option<String>,
    #[serde(rename = "HIPCHAT_API_URL")]
    hipchat_api_url: Option<String>,
    #[serde(rename = "FEATURE_REPO_MIRROR")]
    feature_repo_mirror: Option<bool>,
    #[serde(rename = "REPO_MIRROR_INTERVAL")]
    repo_mirror_interval: Option<serde_yaml::Value>,
}

impl Config {
    /// The embedded default: no file. The first user is created through
    /// `/api/v1/user/initialize` (or `quayside admin create-user`), as a newcomer expects.
    pub fn embedded(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = Config::build(
            RawConfig::default(),
            serde_yaml::Mapping::new(),
            None,
            overrides,
        )?;
        config.features.user_initialize = true;
        Ok(config)
    }

    /// Loads `path` (or the embedded default when `None`) and applies the overrides.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Config::embedded(overrides);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_yaml(&text, path.parent(), overrides).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses YAML text; `dir` is where `ssl.cert`/`ssl.key` are looked for.
    pub fn from_yaml(
        text: &str,
        dir: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let parse_err = |e: serde_yaml::Error| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        };
        let raw_value: serde_yaml::Value = if text.trim().is_empty() {
            serde_yaml::Value::Mapping(Default::default())
        } else {
            serde_yaml::from_str(text).map_err(parse_err)?
        };
        let mapping = match raw_value {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => serde_yaml::Mapping::new(),
            _ => {
                return Err(ConfigError::Parse {
                    path: PathBuf::new(),
                    message: "the configuration must be a mapping of keys to values".into(),
                });
            }
        };
        let typed: RawConfig = (if mapping.is_empty() {
            Ok(RawConfig::default())
        } else {
            serde_yaml::from_str(text)
        })
        .map_err(|e| {
            // serde_yaml names the key path at the front of its message ("DB_URI: invalid type...").
            let msg = e.to_string();
            match msg.split_once(": ") {
                Some((key, rest))
                    if key.chars().all(|c| {
                        c.is_ascii_uppercase() || c.is_ascii_digit() || "_.[]".contains(c)
                    }) =>
                {
                    invalid(key, rest)
                }
                _ => ConfigError::Parse {
                    path: PathBuf::new(),
                    message: msg,
                },
            }
        })?;
        Config::build(typed, mapping, dir, overrides)
    }

    fn build(
        raw: RawConfig,
        mapping: serde_yaml::Mapping,
        dir: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let quota = quota_config(&raw)?;
        let action_logs = action_logs_config(&raw)?;
        let notifications = notification_config(&raw)?;
        let mirror = mirror_config(&raw)?;
        let app_tokens = app_tokens_config(&raw)?;
        let builds = build_config(&mapping)?;
        let scanner = scanner_config(&mapping, dir)?;
        let listen = match overrides.listen {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| invalid("--listen", "bad default"))?,
        };
        let data_dir = overrides
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));

        if let Some(host) = &raw.server_hostname {
            validate_hostname(host).map_err(|m| invalid("SERVER_HOSTNAME", m))?;
        }
        let url_scheme = match raw.preferred_url_scheme.as_deref() {
            None | Some("http") => UrlScheme::Http,
            Some("https") => UrlScheme::Https,
            Some(other) => {
                return Err(invalid(
                    "PREFERRED_URL_SCHEME",
                    format!("must be http or https, not {other:?}"),
                ));
            }
        };
        let database_url = match raw.db_uri.as_deref() {
            None => format!("sqlite://{}", data_dir.join("quayside.db").display()),
            Some(uri) => normalize_db_uri(uri).map_err(|m| invalid("DB_URI", m))?,
        };
        let storage = match raw.storage_config {
            None => StorageConfig::Local {
                path: data_dir.join("blobs"),
            },
            Some(map) => select_storage(map, raw.storage_preference.as_deref())?,
        };
        let tls = match dir {
            Some(dir) => {
                let (cert, key) = (dir.join("ssl.cert"), dir.join("ssl.key"));
                match (cert.is_file(), key.is_file()) {
                    (true, true) => Some(TlsFiles { cert, key }),
                    (false, false) => None,
                    (true, false) => {
                        return Err(invalid(
                            "ssl.key",
                            format!("{} is missing but ssl.cert is present", key.display()),
                        ));
                    }
                    (false, true) => {
                        return Err(invalid(
                            "ssl.cert",
                            format!("{} is missing but ssl.key is present", cert.display()),
                        ));
                    }
                }
            }
            None => None,
        };
        let tag_expiration_options = raw
            .tag_expiration_options
            .unwrap_or_else(|| ["0s", "1d", "1w", "2w", "4w"].map(String::from).to_vec());
        for (i, opt) in tag_expiration_options.iter().enumerate() {
            parse_duration_s(opt).ok_or_else(|| {
                invalid(
                    format!("TAG_EXPIRATION_OPTIONS[{i}]"),
                    format!("{opt:?} is not a duration like 2w, 1d, 12h, 30m or 0s"),
                )
            })?;
        }
        let default_tag_expiration_s = match raw.default_tag_expiration.as_deref() {
            None => DEFAULT_TAG_EXPIRATION_S,
            Some(s) => parse_duration_s(s).ok_or_else(|| {
                invalid(
                    "DEFAULT_TAG_EXPIRATION",
                    format!("{s:?} is not a duration like 2w"),
                )
            })?,
        };
        let super_users = raw.super_users.unwrap_or_default();
        let frequency = raw.garbage_collection_frequency.unwrap_or(30);
        if frequency == 0 {
            return Err(invalid(
                "GARBAGE_COLLECTION_FREQUENCY",
                "must be a positive number of seconds",
            ));
        }
        let gc = GcConfig {
            enabled: raw.feature_garbage_collection.unwrap_or(true),
            frequency: Duration::from_secs(frequency),
            grace: Duration::from_secs(raw.push_temp_tag_expiration_sec.unwrap_or(3600)),
        };
        let bound = |key: &str, value: Option<&str>, default: i64| match value {
            None => Ok(default),
            Some(s) => parse_duration_s(s).ok_or_else(|| {
                invalid(key, format!("{s:?} is not a duration like 1h, 2d or 104w"))
            }),
        };
        let expiration_bounds_s = (
            bound(
                "LABELED_EXPIRATION_MINIMUM",
                raw.labeled_expiration_minimum.as_deref(),
                3600,
            )?,
            bound(
                "LABELED_EXPIRATION_MAXIMUM",
                raw.labeled_expiration_maximum.as_deref(),
                104 * 7 * 86_400,
            )?,
        );
        if expiration_bounds_s.0 > expiration_bounds_s.1 {
            return Err(invalid(
                "LABELED_EXPIRATION_MINIMUM",
                "must not be longer than LABELED_EXPIRATION_MAXIMUM",
            ));
        }
        let mut reserved_label_prefixes: Vec<String> = DEFAULT_RESERVED_LABEL_PREFIXES
            .iter()
            .map(|p| p.to_string())
            .collect();
        for (i, prefix) in raw
            .label_key_reserved_prefixes
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if !prefix.ends_with('.') {
                return Err(invalid(
                    format!("LABEL_KEY_RESERVED_PREFIXES[{i}]"),
                    format!("prefix {prefix:?} must end in a dot"),
                ));
            }
            reserved_label_prefixes.push(prefix);
        }
        let mailing = raw.feature_mailing.unwrap_or(false);
        let mail = match (mailing, raw.mail_server) {
            (true, Some(server)) if !server.trim().is_empty() => {
                validate_hostname(&server).map_err(|m| invalid("MAIL_SERVER", m))?;
                Some(MailConfig {
                    server,
                    port: raw.mail_port.unwrap_or(587),
                    default_sender: raw
                        .mail_default_sender
                        .unwrap_or_else(|| "support@quay.io".into()),
                })
            }
            _ => None,
        };
        Ok(Config {
            listen,
            data_dir,
            server_hostname: raw.server_hostname,
            url_scheme,
            database_url,
            storage,
            storage_start_wait: std::time::Duration::from_secs(
                raw.storage_start_wait_seconds.unwrap_or(30),
            ),
            features: Features {
                general_oci_support: raw.feature_general_oci_support.unwrap_or(true),
                // With a configuration, as Quay: off unless set. The zero-config first run
                // turns it on (see `embedded`).
                user_initialize: raw.feature_user_initialize.unwrap_or(false),
                user_creation: raw.feature_user_creation.unwrap_or(true),
                mailing,
                require_team_invite: raw.feature_require_team_invite.unwrap_or(true),
            },
            super_users,
            user_initialize_token: raw.user_initialize_token.filter(|t| !t.is_empty()),
            tls,
            secret_key: raw.secret_key,
            tag_expiration_options,
            default_tag_expiration_s,
            robots_disallow: raw.robots_disallow.unwrap_or(false),
            robots_whitelist: raw.robots_whitelist.unwrap_or_default(),
            ssrf_allowed_hosts: raw.ssrf_allowed_hosts.unwrap_or_default(),
            mail,
            upload_expiration: Duration::from_secs(raw.upload_expiration_s.unwrap_or(3600)),
            gc,
            quota,
            action_logs,
            notifications,
            mirror,
            app_tokens,
            builds,
            scanner,
            expiration_bounds_s,
            reserved_label_prefixes,
            raw: mapping,
        })
    }

    /// Mail is configured: `FEATURE_MAILING` is on and `MAIL_SERVER` is set.
    pub fn mail_configured(&self) -> bool {
        self.mail.is_some()
    }

    /// Reads a boolean `FEATURE_*`-style key from the raw file, for features that have no typed
    /// field yet.
    pub fn raw_bool(&self, key: &str) -> Option<bool> {
        self.raw.get(key).and_then(serde_yaml::Value::as_bool)
    }
}

/// A non-negative integer given as a number or a string of digits (Quay documents both keys
/// as strings).
fn count_value(key: &str, v: &serde_yaml::Value) -> Result<i64, ConfigError> {
    let n = match v {
        serde_yaml::Value::Number(n) => n.as_i64(),
        serde_yaml::Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.filter(|n| *n >= 0).ok_or_else(|| {
        invalid(
            key,
            format!("{v:?} is not a whole number of bytes or seconds"),
        )
    })
}

fn quota_config(raw: &RawConfig) -> Result<QuotaConfig, ConfigError> {
    let reject = raw
        .default_system_reject_quota_bytes
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| count_value("DEFAULT_SYSTEM_REJECT_QUOTA_BYTES", v))
        .transpose()?;
    let delay = raw
        .quota_total_delay_seconds
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| count_value("QUOTA_TOTAL_DELAY_SECONDS", v))
        .transpose()?
        .unwrap_or(1800);
    Ok(QuotaConfig {
        enabled: raw.feature_quota_management.unwrap_or(false),
        default_reject_bytes: reject.filter(|n| *n > 0),
        default_reject_is_zero: reject == Some(0),
        backfill: raw.quota_backfill.unwrap_or(true),
        backfill_delay: Duration::from_secs(delay as u64),
    })
}

fn app_tokens_config(raw: &RawConfig) -> Result<AppTokensConfig, ConfigError> {
    let expiration_s = match raw.app_specific_token_expiration.as_deref() {
        None | Some("") => None,
        Some(t) => Some(parse_duration_s(t).filter(|s| *s > 0).ok_or_else(|| {
            invalid(
                "APP_SPECIFIC_TOKEN_EXPIRATION",
                format!("{t:?} is not a duration such as 52w, 30d or 12h"),
            )
        })?),
    };
    let gc_window_s = match raw.expired_app_specific_token_gc.as_deref() {
        None | Some("") => 86_400,
        Some(t) => parse_duration_s(t).ok_or_else(|| {
            invalid(
                "EXPIRED_APP_SPECIFIC_TOKEN_GC",
                format!("{t:?} is not a duration such as 1d or 12h"),
            )
        })?,
    };
    Ok(AppTokensConfig {
        enabled: raw.feature_app_specific_tokens.unwrap_or(true),
        expiration_s,
        gc_window_s,
    })
}

fn action_logs_config(raw: &RawConfig) -> Result<ActionLogsConfig, ConfigError> {
    let threshold = match raw.action_log_rotation_threshold.as_deref() {
        None => 30 * 86_400,
        Some(t) => parse_duration_s(t).filter(|s| *s > 0).ok_or_else(|| {
            invalid(
                "ACTION_LOG_ROTATION_THRESHOLD",
                format!("{t:?} is not a duration such as 30d, 12h or 2w"),
            )
        })?,
    };
    let mut path = raw
        .action_log_archive_path
        .clone()
        .unwrap_or_else(|| "actionlogarchive/".into())
        .trim_start_matches('/')
        .to_owned();
    if path.is_empty()
        || path
            .split('/')
            .any(|seg| seg == ".." || seg == "." || seg.contains('\\'))
        || ["blobs/", "uploads/", "exportedlogs/"]
            .iter()
            .any(|reserved| path.starts_with(reserved))
    {
        return Err(invalid(
            "ACTION_LOG_ARCHIVE_PATH",
            format!(
                "{path:?} is not a relative storage path outside blobs/, uploads/ and exportedlogs/"
            ),
        ));
    }
    if !path.ends_with('/') {
        path.push('/');
    }
    Ok(ActionLogsConfig {
        export: raw.feature_log_export.unwrap_or(true),
        rotation: raw.feature_action_log_rotation.unwrap_or(false),
        rotation_threshold: Duration::from_secs(threshold as u64),
        archive_location: raw.action_log_archive_location.clone(),
        archive_path: path,
    })
}

fn notification_config(raw: &RawConfig) -> Result<NotificationConfig, ConfigError> {
    let minutes = raw
        .notification_task_run_minimum_interval_minutes
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| count_value("NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES", v))
        .transpose()?
        .unwrap_or(300);
    let api_url = |key: &str, value: &Option<String>, default: &str| {
        let url = value.as_deref().map(str::trim).unwrap_or(default);
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Ok(url.trim_end_matches('/').to_owned())
            }
            _ => Err(invalid(key, format!("{url:?} is not an http(s) URL"))),
        }
    };
    Ok(NotificationConfig {
        expiry_scan_interval: Duration::from_secs(minutes as u64 * 60),
        flowdock_api_url: api_url(
            "FLOWDOCK_API_URL",
            &raw.flowdock_api_url,
            "https://api.flowdock.com",
        )?,
        hipchat_api_url: api_url(
            "HIPCHAT_API_URL",
            &raw.hipchat_api_url,
            "https://api.hipchat.com",
        )?,
    })
}

fn mirror_config(raw: &RawConfig) -> Result<MirrorConfig, ConfigError> {
    let interval = raw
        .repo_mirror_interval
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| count_value("REPO_MIRROR_INTERVAL", v))
        .transpose()?
        .unwrap_or(30);
    if interval == 0 {
        return Err(invalid(
            "REPO_MIRROR_INTERVAL",
            "must be at least one second".to_owned(),
        ));
    }
    Ok(MirrorConfig {
        enabled: raw.feature_repo_mirror.unwrap_or(false),
        interval: Duration::from_secs(interval as u64),
    })
}

/// Builds: `FEATURE_BUILD_SUPPORT` (default off), `BUILD_MANAGER: [ephemeral, {ALLOWED_WORKER_COUNT,
/// ORCHESTRATOR_PREFIX, ORCHESTRATOR, JOB_REGISTRATION_TIMEOUT, EXECUTORS}]`, `EXECUTORS` (inside
/// the manager's map or at the top level, as Quay's samples show both), `BUILDMAN_HOSTNAME`.
/// `ORCHESTRATOR`/`ORCHESTRATOR_PREFIX` are accepted and not used: the queue is in the database.
#[derive(Clone, Debug)]
pub struct BuildConfig {
    pub enabled: bool,
    /// `ALLOWED_WORKER_COUNT` (default 1): builds one registry process runs at once.
    pub allowed_worker_count: i64,
    /// `BUILDMAN_HOSTNAME`: `host[:port]` builders call back to (default: this server's public
    /// address, else its listen address).
    pub buildman_hostname: Option<String>,
    /// `JOB_REGISTRATION_TIMEOUT` (default 3600): the lifetime of a build's push credential.
    pub job_registration_timeout_s: i64,
    /// `EXECUTORS`, in order (default: one `local` executor).
    pub executors: Vec<ExecutorConfig>,
}

/// Where builds run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    /// A child process of the registry (`quayside builder`).
    Local,
    /// A `batch/v1` Job in `BUILDER_NAMESPACE` (`kubernetes`, `kubernetesPodman`).
    Kubernetes,
}

/// One entry of `EXECUTORS`.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    pub kind: ExecutorKind,
    pub name: String,
    /// `SETUP_TIME` (default 500): seconds a started builder has to register.
    pub setup_time_s: i64,
    /// `MINIMUM_RETRY_THRESHOLD` (default 0): this executor is used only while the build has at
    /// least this many retries left.
    pub minimum_retry_threshold: i64,
    /// `DEBUG`: finished builders' Jobs are kept.
    pub debug: bool,
    /// Every other key of the entry as given (`BUILDER_NAMESPACE`, `K8S_API_SERVER`,
    /// `CONTAINER_*`, `NODE_SELECTOR_LABEL_*`, `WORKER_IMAGE`, `BUILDER_BINARY`, `BUILDER_ENV`...).
    pub settings: serde_yaml::Mapping,
}

impl ExecutorConfig {
    /// A string setting of the entry (numbers are given as their text).
    pub fn setting(&self, key: &str) -> Option<String> {
        match self.settings.get(key)? {
            serde_yaml::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_yaml::Value::Number(n) => Some(n.to_string()),
            serde_yaml::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Security scanning: `FEATURE_SECURITY_SCANNER` (default off, as in Quay) turns on the
/// built-in scanner (the `scanner` worker and `.../manifest/{digest}/security`);
/// `SECURITY_SCANNER_INDEXING_INTERVAL` (seconds, default 30) paces the worker;
/// `SECURITY_SCANNER_OSV_SOURCES` (a Quayside key) lists OSV files, directories or zips the
/// worker imports when they change. `SECURITY_SCANNER_V4_ENDPOINT` (an external Clair v4) is
/// refused: only the built-in scanner is served.
#[derive(Clone, Debug, Default)]
pub struct ScannerConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub osv_sources: Vec<PathBuf>,
}

fn scanner_config(
    mapping: &serde_yaml::Mapping,
    dir: Option<&Path>,
) -> Result<ScannerConfig, ConfigError> {
    use serde_yaml::Value as V;
    let enabled = match mapping.get("FEATURE_SECURITY_SCANNER") {
        None | Some(V::Null) => false,
        Some(V::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(
                "FEATURE_SECURITY_SCANNER",
                format!("{other:?} is not a boolean"),
            ));
        }
    };
    if let Some(v) = mapping.get("SECURITY_SCANNER_V4_ENDPOINT")
        && !v.is_null()
    {
        return Err(invalid(
            "SECURITY_SCANNER_V4_ENDPOINT",
            "an external Clair v4 is not supported: Quayside's built-in scanner serves the \
             security API (remove the key; see docs/scanning.md)"
                .to_owned(),
        ));
    }
    let interval = match mapping.get("SECURITY_SCANNER_INDEXING_INTERVAL") {
        None | Some(V::Null) => 30,
        Some(V::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64().unwrap_or(30),
        Some(other) => {
            return Err(invalid(
                "SECURITY_SCANNER_INDEXING_INTERVAL",
                format!("{other:?} is not a positive number of seconds"),
            ));
        }
    };
    let osv_sources = match mapping.get("SECURITY_SCANNER_OSV_SOURCES") {
        None | Some(V::Null) => Vec::new(),
        Some(V::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                V::String(s) => {
                    let p = PathBuf::from(s);
                    Ok(match dir {
                        Some(d) if p.is_relative() => d.join(p),
                        _ => p,
                    })
                }
                other => Err(invalid(
                    "SECURITY_SCANNER_OSV_SOURCES",
                    format!("{other:?} is not a path"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(invalid(
                "SECURITY_SCANNER_OSV_SOURCES",
                format!("{other:?} is not a list of paths"),
            ));
        }
    };
    Ok(ScannerConfig {
        enabled,
        interval: Duration::from_secs(interval),
        osv_sources,
    })
}

fn build_config(mapping: &serde_yaml::Mapping) -> Result<BuildConfig, ConfigError> {
    use serde_yaml::Value as V;
    let enabled = match mapping.get("FEATURE_BUILD_SUPPORT") {
        None | Some(V::Null) => false,
        Some(V::Bool(b)) => *b,
        Some(V::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(V::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(invalid(
                "FEATURE_BUILD_SUPPORT",
                format!("{other:?} is not a boolean"),
            ));
        }
    };
    let manager = match mapping.get("BUILD_MANAGER") {
        None | Some(V::Null) => serde_yaml::Mapping::new(),
        Some(V::Sequence(items)) => {
            match items.first() {
                Some(V::String(kind)) if kind == "ephemeral" || kind == "enterprise" => {}
                other => {
                    return Err(invalid(
                        "BUILD_MANAGER",
                        format!("the first entry must be \"ephemeral\", not {other:?}"),
                    ));
                }
            }
            match items.get(1) {
                None | Some(V::Null) => serde_yaml::Mapping::new(),
                Some(V::Mapping(m)) => m.clone(),
                Some(other) => {
                    return Err(invalid(
                        "BUILD_MANAGER",
                        format!("the second entry must be a map, not {other:?}"),
                    ));
                }
            }
        }
        Some(other) => {
            return Err(invalid(
                "BUILD_MANAGER",
                format!("expected [ephemeral, {{...}}], not {other:?}"),
            ));
        }
    };
    let int = |map: &serde_yaml::Mapping, key: &str, default: i64| -> Result<i64, ConfigError> {
        match map.get(key) {
            None | Some(V::Null) => Ok(default),
            Some(v) => count_value(key, v),
        }
    };
    let allowed_worker_count = int(&manager, "ALLOWED_WORKER_COUNT", 1)?;
    if allowed_worker_count < 1 {
        return Err(invalid("ALLOWED_WORKER_COUNT", "must be at least 1"));
    }
    let job_registration_timeout_s = int(&manager, "JOB_REGISTRATION_TIMEOUT", 3600)?.max(60);
    let executors_value = manager
        .get("EXECUTORS")
        .or_else(|| mapping.get("EXECUTORS"))
        .cloned()
        .unwrap_or(V::Null);
    let mut executors = Vec::new();
    match executors_value {
        V::Null => {}
        V::Sequence(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let V::Mapping(entry) = item else {
                    return Err(invalid("EXECUTORS", format!("entry {i} is not a map")));
                };
                let kind = match entry.get("EXECUTOR").and_then(V::as_str) {
                    Some("local") => ExecutorKind::Local,
                    Some("kubernetes" | "kubernetesPodman") => ExecutorKind::Kubernetes,
                    other => {
                        return Err(invalid(
                            "EXECUTORS",
                            format!(
                                "entry {i}: EXECUTOR {other:?} is not supported (local, kubernetes, kubernetesPodman)"
                            ),
                        ));
                    }
                };
                let name = entry
                    .get("NAME")
                    .and_then(V::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{}-{i}", entry["EXECUTOR"].as_str().unwrap_or("")));
                let setup_time_s = int(&entry, "SETUP_TIME", 500)?;
                if setup_time_s < 1 {
                    return Err(invalid("SETUP_TIME", "must be at least one second"));
                }
                let minimum_retry_threshold = int(&entry, "MINIMUM_RETRY_THRESHOLD", 0)?;
                let debug = matches!(entry.get("DEBUG"), Some(V::Bool(true)))
                    || matches!(entry.get("DEBUG"), Some(V::String(s)) if s.eq_ignore_ascii_case("true"));
                if kind == ExecutorKind::Kubernetes
                    && entry.get("BUILDER_NAMESPACE").and_then(V::as_str).is_none()
                {
                    return Err(invalid(
                        "BUILDER_NAMESPACE",
                        format!("executor {name:?} (kubernetes) needs BUILDER_NAMESPACE"),
                    ));
                }
                executors.push(ExecutorConfig {
                    kind,
                    name,
                    setup_time_s,
                    minimum_retry_threshold,
                    debug,
                    settings: entry,
                });
            }
        }
        other => {
            return Err(invalid(
                "EXECUTORS",
                format!("expected a list, not {other:?}"),
            ));
        }
    }
    if executors.is_empty() {
        executors.push(ExecutorConfig {
            kind: ExecutorKind::Local,
            name: "local".into(),
            setup_time_s: 500,
            minimum_retry_threshold: 0,
            debug: false,
            settings: serde_yaml::Mapping::new(),
        });
    }
    let buildman_hostname = match mapping.get("BUILDMAN_HOSTNAME") {
        None | Some(V::Null) => None,
        Some(V::String(s)) if s.trim().is_empty() => None,
        Some(V::String(s)) => {
            validate_hostname(s.trim()).map_err(|m| invalid("BUILDMAN_HOSTNAME", m))?;
            Some(s.trim().to_owned())
        }
        Some(other) => {
            return Err(invalid(
                "BUILDMAN_HOSTNAME",
                format!("{other:?} is not a host name"),
            ));
        }
    };
    Ok(BuildConfig {
        enabled,
        allowed_worker_count,
        buildman_hostname,
        job_registration_timeout_s,
        executors,
    })
}

fn validate_hostname(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(']') || n.ends_with(']') => (n, Some(p)),
        _ => (host, None),
    };
    if name.is_empty() || name.contains('/') || name.contains(' ') || name.contains("://") {
        return Err(format!(
            "{host:?} is not a host name (give host or host:port, without a scheme)"
        ));
    }
    if let Some(p) = port {
        p.parse::<u16>()
            .map_err(|_| format!("{host:?} has an invalid port"))?;
    }
    Ok(())
}

/// Accepts Quay's `postgresql://`, `postgres://` and `sqlite:///path` URIs.
fn normalize_db_uri(uri: &str) -> Result<String, String> {
    if let Some(rest) = uri
        .strip_prefix("postgresql://")
        .or_else(|| uri.strip_prefix("postgres://"))
    {
        if rest.is_empty() {
            return Err("a PostgreSQL URI needs a host".into());
        }
        Ok(format!("postgres://{rest}"))
    } else if let Some(path) = uri.strip_prefix("sqlite:///") {
        Ok(format!("sqlite:///{path}"))
    } else if let Some(path) = uri
        .strip_prefix("sqlite://")
        .or_else(|| uri.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err("an SQLite URI needs a file path".into());
        }
        Ok(format!("sqlite://{path}"))
    } else {
        Err(format!(
            "unsupported database URI {:?}: use postgresql://user:password@host/db or sqlite:///path",
            uri.split("://").next().unwrap_or(uri)
        ))
    }
}

fn select_storage(
    map: BTreeMap<String, (String, serde_yaml::Mapping)>,
    preference: Option<&[String]>,
) -> Result<StorageConfig, ConfigError> {
    let key = "DISTRIBUTED_STORAGE_CONFIG";
    let name = match preference.and_then(|p| p.first()) {
        Some(n) => n.clone(),
        None if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(invalid(
                "DISTRIBUTED_STORAGE_PREFERENCE",
                "several storage locations are configured; name the one to use",
            ));
        }
    };
    let (driver, params) = map.get(&name).ok_or_else(|| {
        invalid(
            "DISTRIBUTED_STORAGE_PREFERENCE",
            format!("location {name:?} is not in DISTRIBUTED_STORAGE_CONFIG"),
        )
    })?;
    let at = |field: &str| format!("{key}.{name}.{field}");
    let get_str = |field: &str| -> Result<Option<String>, ConfigError> {
        match params.get(field) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_yaml::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(invalid(at(field), "must be a string")),
        }
    };
    let need = |field: &str| -> Result<String, ConfigError> {
        get_str(field)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(at(field), "is required"))
    };
    let get_bool = |field: &str, default: bool| -> Result<bool, ConfigError> {
        match params.get(field) {
            None | Some(serde_yaml::Value::Null) => Ok(default),
            Some(serde_yaml::Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(at(field), "must be true or false")),
        }
    };
    let get_port = |field: &str| -> Result<Option<u16>, ConfigError> {
        match params.get(field) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(v) => {
                let text = match v {
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                text.parse::<u16>()
                    .map(Some)
                    .map_err(|_| invalid(at(field), "must be a port number"))
            }
        }
    };
    let prefix = get_str("storage_path")?
        .unwrap_or_default()
        .trim_matches('/')
        .to_owned();
    match driver.as_str() {
        "LocalStorage" => Ok(StorageConfig::Local {
            path: PathBuf::from(need("storage_path")?),
        }),
        "S3Storage" | "RadosGWStorage" => {
            let rados = driver == "RadosGWStorage";
            let (bucket_k, access_k, secret_k, host_k) = if rados {
                ("bucket_name", "access_key", "secret_key", "hostname")
            } else {
                ("s3_bucket", "s3_access_key", "s3_secret_key", "host")
            };
            let host = get_str(host_k)?;
            let is_secure = get_bool("is_secure", true)?;
            let port = get_port("port")?;
            let endpoint = match (host, rados) {
                (None, true) => return Err(invalid(at(host_k), "is required")),
                (None, false) => None,
                (Some(h), _) => {
                    let h = h
                        .trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_owned();
                    validate_hostname(&h).map_err(|m| invalid(at(host_k), m))?;
                    let scheme = if is_secure { "https" } else { "http" };
                    Some(match port {
                        Some(p) => format!("{scheme}://{h}:{p}"),
                        None => format!("{scheme}://{h}"),
                    })
                }
            };
            Ok(StorageConfig::S3(S3Config {
                bucket: need(bucket_k)?,
                access_key: need(access_k)?,
                secret_key: need(secret_k)?,
                endpoint,
                region: get_str("s3_region")?.unwrap_or_else(|| "us-east-1".into()),
                prefix,
            }))
        }
        other => Err(invalid(
            format!("{key}.{name}"),
            format!(
                "unsupported storage driver {other:?} (LocalStorage, S3Storage and RadosGWStorage are supported)"
            ),
        )),
    }
}

/// Parses Quay-style durations: `30s`, `15m`, `12h`, `2d`, `3w` (and `0s`). Returns seconds.
pub fn parse_duration_s(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .ok()
        .filter(|n| *n >= 0)?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(text, None, &Overrides::default())
    }

    #[test]
    fn first_user_initialization_is_on_only_without_a_configuration() {
        let embedded = Config::embedded(&Overrides::default()).unwrap();
        assert!(embedded.features.user_initialize);
        assert_eq!(embedded.user_initialize_token, None);
        assert!(!load("").unwrap().features.user_initialize);
        let on = load("FEATURE_USER_INITIALIZE: true\nUSER_INITIALIZE_TOKEN: t\n").unwrap();
        assert!(on.features.user_initialize);
        assert_eq!(on.user_initialize_token.as_deref(), Some("t"));
    }

    #[test]
    fn embedded_default() {
        let c = Config::embedded(&Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://data/quayside.db");
        assert_eq!(
            c.storage,
            StorageConfig::Local {
                path: "data/blobs".into()
            }
        );
        assert!(c.features.general_oci_support);
    }

    #[test]
    fn quay_bundle_with_s3_and_unknown_keys() {
        let c = load(
            r#"
SERVER_HOSTNAME: registry.example.com:8443
PREFERRED_URL_SCHEME: https
DB_URI: postgresql://quay:secret@db.example.com:5432/quay
FEATURE_GENERAL_OCI_SUPPORT: false
BUILDLOGS_REDIS: {host: redis}
SOME_FUTURE_KEY: [1, 2]
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - S3Storage
    - host: s3.example.com
      port: 9000
      s3_bucket: quay
      s3_access_key: AK
      s3_secret_key: SK
      storage_path: /datastorage/registry
"#,
        )
        .unwrap();
        assert_eq!(c.url_scheme, UrlScheme::Https);
        assert_eq!(
            c.database_url,
            "postgres://quay:secret@db.example.com:5432/quay"
        );
        assert!(!c.features.general_oci_support);
        let StorageConfig::S3(s3) = c.storage else {
            panic!("expected S3")
        };
        assert_eq!(s3.endpoint.as_deref(), Some("https://s3.example.com:9000"));
        assert_eq!(s3.prefix, "datastorage/registry");
        assert_eq!(s3.bucket, "quay");
    }

    #[test]
    fn radosgw_keys() {
        let c = load(
            r#"
DISTRIBUTED_STORAGE_CONFIG:
  ceph:
    - RadosGWStorage
    - {hostname: 127.0.0.1, port: "7480", is_secure: false, bucket_name: b, access_key: a, secret_key: s, storage_path: /x}
"#,
        )
        .unwrap();
        let StorageConfig::S3(s3) = c.storage else {
            panic!("expected S3")
        };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:7480"));
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (text, key) in [
            (
                "FEATURE_GENERAL_OCI_SUPPORT: maybe",
                "FEATURE_GENERAL_OCI_SUPPORT",
            ),
            ("PREFERRED_URL_SCHEME: gopher", "PREFERRED_URL_SCHEME"),
            ("DB_URI: mysql://x", "DB_URI"),
            ("ROBOTS_DISALLOW: sometimes", "ROBOTS_DISALLOW"),
            ("FEATURE_MAILING: yes please", "FEATURE_MAILING"),
            ("FEATURE_USER_CREATION: 3", "FEATURE_USER_CREATION"),
            (
                "FEATURE_MAILING: true\nMAIL_SERVER: smtp://x/",
                "MAIL_SERVER",
            ),
            ("SERVER_HOSTNAME: http://x/y", "SERVER_HOSTNAME"),
            ("DEFAULT_TAG_EXPIRATION: soon", "DEFAULT_TAG_EXPIRATION"),
            (
                "GARBAGE_COLLECTION_FREQUENCY: 0",
                "GARBAGE_COLLECTION_FREQUENCY",
            ),
            (
                "GARBAGE_COLLECTION_FREQUENCY: often",
                "GARBAGE_COLLECTION_FREQUENCY",
            ),
            (
                "PUSH_TEMP_TAG_EXPIRATION_SEC: -1",
                "PUSH_TEMP_TAG_EXPIRATION_SEC",
            ),
            (
                "LABELED_EXPIRATION_MAXIMUM: never",
                "LABELED_EXPIRATION_MAXIMUM",
            ),
            (
                "LABEL_KEY_RESERVED_PREFIXES: [com.example]",
                "LABEL_KEY_RESERVED_PREFIXES[0]",
            ),
            (
                "TAG_EXPIRATION_OPTIONS: [2w, forever]",
                "TAG_EXPIRATION_OPTIONS[1]",
            ),
            (
                "DISTRIBUTED_STORAGE_CONFIG: {default: [S3Storage, {s3_bucket: b, s3_access_key: a}]}",
                "DISTRIBUTED_STORAGE_CONFIG.default.s3_secret_key",
            ),
            (
                "DISTRIBUTED_STORAGE_CONFIG: {default: [AzureStorage, {}]}",
                "DISTRIBUTED_STORAGE_CONFIG.default",
            ),
        ] {
            match load(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error naming {key}, got {other:?}"),
            }
        }
    }

    #[test]
    fn notification_keys() {
        let c = load("NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES: 5\nHIPCHAT_API_URL: http://proxy.example/hipchat/\n").unwrap();
        assert_eq!(
            c.notifications.expiry_scan_interval,
            Duration::from_secs(300)
        );
        assert_eq!(
            c.notifications.hipchat_api_url,
            "http://proxy.example/hipchat"
        );
        assert_eq!(c.notifications.flowdock_api_url, "https://api.flowdock.com");
        let e = load("NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES: often\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES"),
            "{e}"
        );
        let e = load("FLOWDOCK_API_URL: ftp://x\n").unwrap_err();
        assert!(e.to_string().contains("FLOWDOCK_API_URL"), "{e}");
    }

    #[test]
    fn quota_keys() {
        let c = load(
            "FEATURE_QUOTA_MANAGEMENT: true\nDEFAULT_SYSTEM_REJECT_QUOTA_BYTES: \"1048576\"\nQUOTA_TOTAL_DELAY_SECONDS: 5\n",
        )
        .unwrap();
        assert!(c.quota.enabled && c.quota.backfill);
        assert_eq!(c.quota.default_reject_bytes, Some(1_048_576));
        assert_eq!(c.quota.backfill_delay, Duration::from_secs(5));
        let c = load("DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 0\n").unwrap();
        assert!(!c.quota.enabled && c.quota.default_reject_is_zero);
        assert_eq!(c.quota.default_reject_bytes, None);
        let e = load("QUOTA_TOTAL_DELAY_SECONDS: soon\n").unwrap_err();
        assert!(e.to_string().contains("QUOTA_TOTAL_DELAY_SECONDS"), "{e}");
    }

    #[test]
    fn build_keys() {
        let c = load(
            "FEATURE_BUILD_SUPPORT: true\nBUILDMAN_HOSTNAME: builds.example.com:443\nBUILD_MANAGER:\n- ephemeral\n- ALLOWED_WORKER_COUNT: 3\n  ORCHESTRATOR_PREFIX: buildman/x/\n  ORCHESTRATOR: {REDIS_HOST: r}\n  EXECUTORS:\n  - EXECUTOR: kubernetes\n    BUILDER_NAMESPACE: builder\n    SETUP_TIME: 180\n    MINIMUM_RETRY_THRESHOLD: 1\n    CONTAINER_MEMORY_LIMITS: 5120Mi\n  - EXECUTOR: local\n    DEBUG: true\n",
        )
        .unwrap();
        let b = &c.builds;
        assert!(b.enabled);
        assert_eq!(b.allowed_worker_count, 3);
        assert_eq!(
            b.buildman_hostname.as_deref(),
            Some("builds.example.com:443")
        );
        assert_eq!(b.executors.len(), 2);
        assert_eq!(b.executors[0].kind, ExecutorKind::Kubernetes);
        assert_eq!(b.executors[0].setup_time_s, 180);
        assert_eq!(b.executors[0].minimum_retry_threshold, 1);
        assert_eq!(
            b.executors[0].setting("CONTAINER_MEMORY_LIMITS").as_deref(),
            Some("5120Mi")
        );
        assert_eq!(b.executors[1].kind, ExecutorKind::Local);
        assert_eq!(b.executors[1].setup_time_s, 500);
        assert!(b.executors[1].debug);
        // EXECUTORS at the top level (as another of Quay's samples shows), and the defaults.
        let c = load("FEATURE_BUILD_SUPPORT: true\nEXECUTORS:\n- EXECUTOR: kubernetesPodman\n  BUILDER_NAMESPACE: vb\n").unwrap();
        assert_eq!(c.builds.executors[0].kind, ExecutorKind::Kubernetes);
        let c = load("").unwrap();
        assert!(!c.builds.enabled);
        assert_eq!(c.builds.allowed_worker_count, 1);
        assert_eq!(c.builds.executors[0].kind, ExecutorKind::Local);
        for (bad, key) in [
            ("EXECUTORS:\n- EXECUTOR: ec2\n", "EXECUTORS"),
            ("EXECUTORS:\n- EXECUTOR: kubernetes\n", "BUILDER_NAMESPACE"),
            (
                "BUILD_MANAGER: [ephemeral, {ALLOWED_WORKER_COUNT: 0}]\n",
                "ALLOWED_WORKER_COUNT",
            ),
            ("BUILD_MANAGER: [other]\n", "BUILD_MANAGER"),
            ("FEATURE_BUILD_SUPPORT: maybe\n", "FEATURE_BUILD_SUPPORT"),
            ("BUILDMAN_HOSTNAME: http://x/\n", "BUILDMAN_HOSTNAME"),
        ] {
            let e = load(bad).unwrap_err();
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn mirror_keys() {
        let c = load("FEATURE_REPO_MIRROR: true\nREPO_MIRROR_INTERVAL: \"45\"\n").unwrap();
        assert!(c.mirror.enabled);
        assert_eq!(c.mirror.interval, Duration::from_secs(45));
        let c = load("SERVER_HOSTNAME: r.example.com\n").unwrap();
        assert!(!c.mirror.enabled);
        assert_eq!(c.mirror.interval, Duration::from_secs(30));
        for bad in ["REPO_MIRROR_INTERVAL: 0\n", "REPO_MIRROR_INTERVAL: often\n"] {
            let e = load(bad).unwrap_err();
            assert!(e.to_string().contains("REPO_MIRROR_INTERVAL"), "{e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_s("2w"), Some(1_209_600));
        assert_eq!(parse_duration_s("0s"), Some(0));
        assert_eq!(parse_duration_s("90m"), Some(5400));
        assert_eq!(parse_duration_s("w"), None);
        assert_eq!(parse_duration_s("-1d"), None);
        assert_eq!(parse_duration_s("1y"), None);
    }
}
