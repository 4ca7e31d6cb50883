//! `pbxdesk`: the command line over the same services as the desktop app.
//!
//! Exit codes: 0 ok, 1 internal failure, 2 usage, 3 validation, 4 not found, 5 conflict (an
//! apply that stopped or rolled back), 6 forbidden or not logged in, 7 workspace key, 8 busy
//! (try again), 9 `pbx check` ran and a check failed, 10 an apply refused before it changed
//! anything (drift, a missing include line, the PBX locked, …), 11 the PBX cannot be reached.

mod output;
mod version;

use clap::{Args, Parser, Subcommand};
use output::{print_error, print_ok, Show};
use pbxdesk_core::domain::{
    RingStrategy, Role, SshAuth, TenantStatus, Transport, UserRole, UserStatus, Via,
};
use pbxdesk_core::model::{
    AuditFilter, AuditQuery, DidPatch, NewApiToken, NewDevice, NewDid, NewPbx, NewPolicy,
    NewRingGroup, NewTenant, NewTrunk, NewUser, PbxPatch, PolicyPatch, PolicyRule, RingGroupPatch,
    TenantPatch, TrunkPatch, UserPatch,
};
use pbxdesk_core::service::{
    parse_rule, ApplyOptions, ApplyOutcome, ApplySource, ApplyStep, OpenOptions, Progress,
};
use pbxdesk_core::{Actor, Error, ErrorCode, Workspace};
use secrecy::{ExposeSecret, SecretString};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Parser)]
#[command(
    name = "pbxdesk",
    version,
    about = "Run the Asterisk PBXs of many customers from one workspace"
)]
struct Cli {
    /// The SQLite workspace file (default: the OS data directory's pbxdesk/workspace.sqlite).
    #[arg(
        long,
        global = true,
        env = "PBXDESK_WORKSPACE",
        conflicts_with = "database_url"
    )]
    workspace: Option<PathBuf>,
    /// A team workspace on PostgreSQL: postgres://user@host/db.
    #[arg(
        long,
        global = true,
        env = "PBXDESK_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The workspace key file (default: beside the SQLite file; for a team workspace, the data
    /// directory's pbxdesk/team.key). PBXDESK_PASSPHRASE derives the key from a passphrase instead.
    #[arg(long, global = true, env = "PBXDESK_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Log in as this operator (required on a team workspace). The password is read from
    /// PBXDESK_PASSWORD or asked for.
    #[arg(long, global = true, env = "PBXDESK_OPERATOR")]
    operator: Option<String>,
    /// Print results (and errors) as JSON on standard output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// PBXs the workspace manages.
    #[command(subcommand)]
    Pbx(PbxCmd),
    /// Customers: each with its own contexts and extension range on a PBX.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// People: each gets an extension, voicemail and a SIP device.
    #[command(subcommand)]
    User(UserCmd),
    /// SIP devices of a user.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Inbound numbers and where they go.
    #[command(subcommand)]
    Did(DidCmd),
    /// Ring groups: an extension that rings some of a tenant's users, then goes on.
    #[command(subcommand, name = "ring-group")]
    RingGroup(RingGroupCmd),
    /// SIP trunks of a PBX and the tenants that may use them.
    #[command(subcommand)]
    Trunk(TrunkCmd),
    /// Outbound policies (classes of service): ordered rules of a tenant.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Bulk import from CSV: all or nothing, a report of every row (and every problem) first.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Bulk export as CSV, in the columns `import` reads.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Serve the HTTP API (/api/v1, its OpenAPI document at /api/v1/openapi.json) on this
    /// workspace until stopped. Operators log in with POST /api/v1/auth/login. Plain HTTP on
    /// loopback only: on any other address it is HTTPS, with --tls-cert/--tls-key or a
    /// self-signed certificate made on first start and kept (its fingerprint is printed).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The certificate chain to serve, PEM (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Its private key, PEM (with --tls-cert).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// HTTPS on loopback too (a self-signed certificate unless --tls-cert is given).
        #[arg(long)]
        tls: bool,
        /// A web app allowed to call the API from a browser, as https://host[:port]
        /// (repeatable). None by default: browsers refuse cross-origin calls.
        #[arg(long = "cors-origin")]
        cors_origins: Vec<String>,
    },
    /// This build's version; with --check, what the update server offers. Installs nothing
    /// (the app installs an update once the technician agrees, its signature checked). Exits 11
    /// when the server cannot be reached.
    Version {
        #[arg(long)]
        check: bool,
        /// The update manifest's https:// address (the one the app's About → Updates names).
        #[arg(long, env = "PBXDESK_UPDATE_ENDPOINT")]
        endpoint: Option<String>,
        /// The PEM file of the CA that issued the server's certificate, when it is the MSP's own.
        #[arg(long, env = "PBXDESK_UPDATE_CA")]
        ca_file: Option<PathBuf>,
    },
    /// What a PBX is doing now (the same as `pbx status NAME`): health, trunks, devices,
    /// calls. Exits 11 when the PBX cannot be reached.
    Status {
        #[arg(long)]
        pbx: String,
        /// Keep watching: a line (a JSON line with --json) each time something changes.
        #[arg(long)]
        watch: bool,
    },
    /// Write a PBX's configuration, as it would be applied, into a folder (offline).
    Render {
        #[arg(long)]
        pbx: String,
        /// Lines up with /etc/asterisk: extensions.d/pbxdesk/…, pjsip.d/pbxdesk/…, plus
        /// realtime/ps_endpoints.json.
        #[arg(long)]
        out: PathBuf,
        /// Write SIP and trunk passwords and voicemail PINs instead of ********.
        #[arg(long)]
        with_secrets: bool,
    },
    /// What an apply would change, against the last applied render (offline; no secrets).
    Diff {
        #[arg(long)]
        pbx: String,
    },
    /// Take the workspace to the PBX: render, validate, refuse drift, lock, back up, upload,
    /// reload, verify what Asterisk loaded, sync the realtime rows; restore on any failure.
    Apply {
        #[arg(
            long,
            required_unless_present = "all_pending",
            conflicts_with = "all_pending"
        )]
        pbx: Option<String>,
        /// Apply every PBX whose render differs from its last apply, each guarded as one
        /// apply; one line per PBX, and the exit code of the worst outcome.
        #[arg(long, conflicts_with_all = ["previous", "dry_run"])]
        all_pending: bool,
        /// How many PBXs are applied at once with --all-pending (1 to 16).
        #[arg(long, default_value_t = pbxdesk_core::service::FLEET_PARALLEL, requires = "all_pending")]
        parallel: usize,
        /// Show what would change and touch nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace generated files someone changed on the PBX by hand.
        #[arg(long)]
        overwrite_drift: bool,
        /// Add pbxdesk's `#tryinclude` lines to extensions.conf, pjsip.conf, voicemail.conf.
        #[arg(long)]
        add_includes: bool,
        /// Seconds the PBX waits for this apply's confirmation before it restores the old
        /// configuration by itself (2 to 600; the apply confirms as soon as its checks pass).
        #[arg(long, default_value_t = pbxdesk_core::service::CONFIRM_DEFAULT)]
        confirm_seconds: u32,
        /// Apply the render applied before the last one: rolls the last apply back (through
        /// the same guarded steps; the workspace keeps its changes).
        #[arg(long)]
        previous: bool,
    },
    /// The applies to a PBX, newest first, each with its outcome (--json: steps and diff too).
    History {
        #[arg(long)]
        pbx: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Where a call to NUMBER goes: a DID, or (with --from) what a user dials.
    Trace {
        #[arg(long)]
        pbx: String,
        #[arg(long)]
        number: String,
        /// The calling user: EXTENSION, or SLUG/EXTENSION when several tenants have it.
        #[arg(long)]
        from: Option<String>,
    },
    /// Operators of pbxdesk and their roles.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// API tokens for automation (a PSA or an RMM calling `pbxdesk serve`).
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Fill an empty workspace with demo data.
    #[command(subcommand)]
    Demo(DemoCmd),
}

#[derive(Subcommand)]
enum PbxCmd {
    /// Add a PBX and how to reach it (nothing is contacted).
    Add {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Change how a PBX is reached.
    Update {
        name: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Refuse the change if the profile changed since this version.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    Show {
        name: String,
    },
    /// Remove a PBX that no tenant uses.
    Remove {
        name: String,
    },
    List,
    /// Show the PBX's SSH host key fingerprint and pin it once you accept it.
    Trust {
        name: String,
        /// Pin this fingerprint (SHA256:…) without contacting the PBX.
        #[arg(long)]
        fingerprint: Option<String>,
        /// Accept the offered key without asking (only after checking it another way).
        #[arg(long)]
        yes: bool,
    },
    /// Check SSH, the config folder, include lines, free disk, AMI and the realtime database.
    Check {
        name: String,
    },
    /// What the PBX is doing now, over AMI: phones and their contacts, trunk registrations,
    /// calls. Exits 11 when the PBX cannot be reached.
    Status {
        name: String,
        /// Keep watching: a line (a JSON line with --json) each time something changes, until
        /// interrupted; reconnects by itself.
        #[arg(long)]
        watch: bool,
    },
}

/// The connection profile. Secrets never come from the command line (other users can read
/// it): each `--…-stdin` flag reads one line from standard input, in the order ssh, ami, db.
#[derive(Args)]
struct ProfileArgs {
    #[arg(long)]
    host: Option<String>,
    /// SSH port.
    #[arg(long)]
    port: Option<u16>,
    /// SSH user.
    #[arg(long)]
    user: Option<String>,
    #[arg(long, value_parser = parse_ssh_auth)]
    auth: Option<SshAuth>,
    /// Private key file for --auth key.
    #[arg(long)]
    key: Option<String>,
    /// SSH password (--auth password) or key passphrase (--auth key), from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// The Asterisk config folder (default /etc/asterisk).
    #[arg(long)]
    config_dir: Option<String>,
    /// tunnel (through SSH to the PBX's 127.0.0.1, the default) or direct.
    #[arg(long, value_parser = parse_via)]
    ami_via: Option<Via>,
    #[arg(long)]
    ami_port: Option<u16>,
    #[arg(long)]
    ami_user: Option<String>,
    #[arg(long)]
    ami_secret_stdin: bool,
    #[arg(long, value_parser = parse_via)]
    db_via: Option<Via>,
    #[arg(long)]
    db_port: Option<u16>,
    #[arg(long)]
    db_name: Option<String>,
    #[arg(long)]
    db_user: Option<String>,
    #[arg(long)]
    db_password_stdin: bool,
    /// Ask on the terminal (hidden) for the SSH secret, AMI secret and database password;
    /// an empty answer leaves that one as it is.
    #[arg(long)]
    prompt_secrets: bool,
    #[arg(long)]
    connect_timeout_ms: Option<u32>,
    #[arg(long)]
    command_timeout_ms: Option<u32>,
}

impl ProfileArgs {
    fn patch(&self, expected_version: Option<i64>) -> Result<PbxPatch, Error> {
        let mut lines = if self.password_stdin || self.ami_secret_stdin || self.db_password_stdin {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::Store(format!("cannot read standard input: {e}")))?;
            s.lines().map(str::to_owned).collect::<Vec<_>>().into_iter()
        } else {
            Vec::new().into_iter()
        };
        let mut take = |wanted: bool, what: &str| -> Result<Option<String>, Error> {
            if !wanted {
                return Ok(None);
            }
            lines.next().map(Some).ok_or_else(|| {
                Error::Validation(pbxdesk_core::ValidationError::secret(
                    what,
                    "expected one line on standard input",
                ))
            })
        };
        let mut ssh_secret = take(self.password_stdin, "ssh_secret")?;
        let mut ami_secret = take(self.ami_secret_stdin, "ami_secret")?;
        let mut db_password = take(self.db_password_stdin, "db_password")?;
        if self.prompt_secrets {
            let ask = |what: &str| -> Result<Option<String>, Error> {
                let s = rpassword::prompt_password(format!("{what} (empty: unchanged): "))
                    .map_err(|e| Error::Store(format!("cannot read from the terminal: {e}")))?;
                Ok(Some(s).filter(|s| !s.is_empty()))
            };
            ssh_secret = ssh_secret.or(ask("SSH password or key passphrase")?);
            ami_secret = ami_secret.or(ask("AMI secret")?);
            db_password = db_password.or(ask("database password")?);
        }
        Ok(PbxPatch {
            host: self.host.clone(),
            ssh_port: self.port,
            ssh_user: self.user.clone(),
            ssh_auth: self.auth,
            ssh_key_path: self.key.clone(),
            ssh_secret,
            config_dir: self.config_dir.clone(),
            ami_via: self.ami_via,
            ami_port: self.ami_port,
            ami_user: self.ami_user.clone(),
            ami_secret,
            db_via: self.db_via,
            db_port: self.db_port,
            db_name: self.db_name.clone(),
            db_user: self.db_user.clone(),
            db_password,
            connect_timeout_ms: self.connect_timeout_ms,
            command_timeout_ms: self.command_timeout_ms,
            expected_version,
        })
    }
}

#[derive(Subcommand)]
enum TenantCmd {
    Create {
        #[arg(long)]
        name: String,
        /// The stable short name (derived from the name when absent).
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        pbx: String,
        /// e.g. 1000-1999
        #[arg(long)]
        ext_range: String,
        /// ISO country (CH, DE, AT, FR, GB, NL, US, CA): national numbers and emergency
        /// numbers. CH when absent.
        #[arg(long)]
        country: Option<String>,
    },
    List,
    Show {
        slug: String,
    },
    Update {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        ext_range: Option<String>,
        #[arg(long)]
        country: Option<String>,
        /// Where unassigned numbers go: user:EXT, voicemail:EXT, external:+NUMBER or hangup.
        #[arg(long)]
        unknown_did: Option<String>,
        /// E.164 outbound caller ID of users without their own; empty clears.
        #[arg(long)]
        caller_id: Option<String>,
        /// The policy of users without their own; empty clears.
        #[arg(long)]
        default_policy: Option<String>,
        /// Refuse the change if the tenant changed since this version.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    Suspend {
        slug: String,
    },
    Resume {
        slug: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// A free extension in the tenant's range (default: the lowest free one).
        #[arg(long)]
        extension: Option<String>,
        #[arg(long, value_parser = parse_user_role)]
        role: Option<UserRole>,
        /// Outbound caller ID, E.164.
        #[arg(long)]
        caller_id: Option<String>,
        #[arg(long)]
        no_voicemail: bool,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    /// USER is an id or TENANT/EXTENSION, e.g. acme/1000.
    Show {
        user: String,
    },
    Update {
        user: String,
        #[command(flatten)]
        patch: UserPatchArgs,
    },
    Suspend {
        user: String,
    },
    Resume {
        user: String,
    },
    Delete {
        user: String,
    },
    /// Invites the user to self-service: prints the invite (once) they take on the
    /// self-service page of `pbxdesk serve` (/self/) to set their own password.
    Invite {
        user: String,
    },
    /// Ends the user's self-service: the invite, their password and their sessions.
    RemoveSelfService {
        user: String,
    },
}

#[derive(Args)]
struct UserPatchArgs {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long, value_parser = parse_user_role)]
    role: Option<UserRole>,
    /// E.164; an empty value clears it.
    #[arg(long)]
    caller_id: Option<String>,
    #[arg(long)]
    voicemail: Option<bool>,
    /// Read a new voicemail PIN from standard input.
    #[arg(long)]
    voicemail_pin_stdin: bool,
    #[arg(long)]
    dnd: Option<bool>,
    /// Forward every call to an extension or an E.164 number; an empty value clears it.
    /// DND and forwards reach the PBX at once (no apply); when it cannot be reached the user
    /// shows them as pending until the next connection or apply.
    #[arg(long, visible_alias = "forward-to")]
    forward_always: Option<String>,
    /// Forward when busy (or on DND); an empty value clears it.
    #[arg(long)]
    forward_busy: Option<String>,
    /// Forward when nobody answers within the ring time; an empty value clears it.
    #[arg(long)]
    forward_no_answer: Option<String>,
    /// How long the user's devices ring, 5 to 300 seconds.
    #[arg(long)]
    ring_seconds: Option<u32>,
    /// The user's own outbound policy; empty: the tenant's default.
    #[arg(long)]
    policy: Option<String>,
    #[arg(long)]
    expected_version: Option<i64>,
}

#[derive(Args)]
struct TrunkArgs {
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    port: Option<u16>,
    #[arg(long, value_parser = parse_transport)]
    transport: Option<Transport>,
    /// Register with the provider (else the trunk is recognised by its host's address).
    #[arg(long)]
    register: Option<bool>,
    /// Empty clears.
    #[arg(long)]
    username: Option<String>,
    /// Read the trunk's password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    #[arg(long)]
    from_domain: Option<String>,
    #[arg(long)]
    from_user: Option<String>,
    /// e.g. alaw,ulaw
    #[arg(long)]
    codecs: Option<String>,
    #[arg(long)]
    enabled: Option<bool>,
    /// Tenants that may use the trunk (comma-separated; replaces the list).
    #[arg(long, value_delimiter = ',')]
    tenants: Option<Vec<String>>,
}

#[derive(Subcommand)]
enum TrunkCmd {
    Add {
        #[arg(long)]
        pbx: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        args: TrunkArgs,
    },
    List {
        #[arg(long)]
        pbx: Option<String>,
    },
    Show {
        #[arg(long)]
        pbx: String,
        name: String,
    },
    Update {
        #[arg(long)]
        pbx: String,
        name: String,
        #[command(flatten)]
        args: TrunkArgs,
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Refused while a policy rule names the trunk.
    Remove {
        #[arg(long)]
        pbx: String,
        name: String,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// RULE: "PATTERN allow|deny [strip=N] [prepend=+41] [trunks=a,b]", in order, e.g.
    /// --rule "_0[1-9]X. allow strip=1 prepend=+41 trunks=sipcall" --rule "_00X. deny".
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Make it the tenant's default policy.
        #[arg(long)]
        default: bool,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    Show {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// Replace the rules (in order).
    Update {
        #[arg(long)]
        tenant: String,
        name: String,
        #[arg(long = "rule")]
        rules: Vec<String>,
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Add one rule at a position (1 = first; the end when absent).
    RuleAdd {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        policy: String,
        #[arg(long)]
        at: Option<usize>,
        rule: String,
    },
    /// Remove the rule at a position (1 = first).
    RuleRemove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        policy: String,
        position: usize,
    },
    /// Refused while it is the tenant's default or a user's own.
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    Add {
        /// An id or TENANT/EXTENSION.
        #[arg(long)]
        user: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        sip_username: Option<String>,
        #[arg(long, value_parser = parse_transport)]
        transport: Option<Transport>,
        /// In preference order, e.g. opus,g722,ulaw
        #[arg(long)]
        codecs: Option<String>,
        #[arg(long)]
        no_nat: bool,
    },
    /// The devices of one user (--user) or of every user of a tenant (--tenant).
    #[command(group(clap::ArgGroup::new("whose").required(true).args(["user", "tenant"])))]
    List {
        /// An id or TENANT/EXTENSION.
        #[arg(long)]
        user: Option<String>,
        /// A tenant's slug.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// DEVICE is an id or a SIP username.
    Remove { device: String },
    /// Show the device's SIP password (audited).
    Reveal { device: String },
    /// Give the device a new random SIP password and print it once (audited). The PBX gets it
    /// at the next apply; until then the phone keeps the old one.
    NewPassword { device: String },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// A tenant's users from a CSV file (`-` reads standard input). A header row names the
    /// columns, in any order: email, name, extension (empty: the lowest free), role,
    /// outbound_caller_id, voicemail, voicemail_pin, dnd, forward_always, forward_busy,
    /// forward_no_answer, ring_seconds, policy, and device_N_label / _sip_username /
    /// _transport / _codecs / _nat for devices. Rows update the users they match; a column
    /// left out leaves that field as it is. `,` `;` or tab separated, UTF-8 (with or without
    /// BOM). Exits 3 with every problem listed when any row is bad; nothing is written then.
    Users {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
        /// Say what each row would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// What rows are matched on.
        #[arg(long = "match", value_enum, default_value = "email")]
        key: MatchKey,
    },
    /// A tenant's inbound numbers from CSV: number, label, destination, trunk.
    Dids {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MatchKey {
    Email,
    Extension,
}

#[derive(Subcommand)]
enum ExportCmd {
    /// A tenant's users as CSV (to standard output, or --out FILE).
    Users {
        #[arg(long)]
        tenant: String,
        /// Write to this file (owner-only, replaced whole) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Add voicemail PINs and SIP passwords (needs the right to reveal them; audited).
        #[arg(long)]
        with_secrets: bool,
    },
    /// A tenant's inbound numbers as CSV.
    Dids {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DidCmd {
    /// Route a number: --destination user:EXT | voicemail:EXT | ring_group:EXT |
    /// external:+NUMBER | hangup.
    Add {
        #[arg(long)]
        tenant: String,
        /// As typed; a national form needs --country.
        #[arg(long)]
        number: String,
        /// ISO country for national forms, e.g. CH, DE, US (the tenant's when absent).
        #[arg(long)]
        country: Option<String>,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        destination: String,
        /// The trunk (provider) that delivers the number.
        #[arg(long)]
        trunk: Option<String>,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    /// NUMBER in E.164, e.g. +41445551234.
    Update {
        number: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        destination: Option<String>,
        /// The trunk that delivers it; empty clears.
        #[arg(long)]
        trunk: Option<String>,
        #[arg(long)]
        expected_version: Option<i64>,
    },
    Remove {
        number: String,
    },
}

#[derive(Subcommand)]
enum RingGroupCmd {
    /// Make a ring group (the lowest free extension of the tenant's range unless --extension).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        extension: Option<u32>,
        /// Members' extensions in ringing order, comma-separated: --members 100,101,102.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<u32>,
        /// all (at once, the default), in_order or round_robin.
        #[arg(long, value_parser = parse_ring_strategy)]
        strategy: Option<RingStrategy>,
        /// Seconds each member rings (in_order, round_robin); 20 when absent.
        #[arg(long)]
        member_seconds: Option<u32>,
        /// Seconds the group rings in all; 60 when absent.
        #[arg(long)]
        total_seconds: Option<u32>,
        /// Where a call goes when nobody answers: user:EXT, voicemail:EXT, ring_group:EXT,
        /// external:+NUMBER or hangup (the default).
        #[arg(long)]
        no_answer: Option<String>,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    /// GROUP as SLUG/EXT, e.g. acme-dental/600.
    Show { group: String },
    Update {
        group: String,
        #[arg(long)]
        name: Option<String>,
        /// The new members, in order (replaces the list).
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<u32>>,
        #[arg(long, value_parser = parse_ring_strategy)]
        strategy: Option<RingStrategy>,
        #[arg(long)]
        member_seconds: Option<u32>,
        #[arg(long)]
        total_seconds: Option<u32>,
        #[arg(long)]
        no_answer: Option<String>,
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Delete a group nothing routes to any more.
    Delete { group: String },
}

fn parse_ring_strategy(s: &str) -> Result<RingStrategy, String> {
    RingStrategy::parse(s).map_err(|e| e.to_string())
}

/// A group reference, SLUG/EXT.
fn group_ref(r: &str) -> Result<(String, u32), Error> {
    let bad = || {
        Error::Validation(pbxdesk_core::ValidationError::new(
            "group",
            r,
            "the tenant's slug and the group's extension, SLUG/EXT (e.g. acme-dental/600)",
        ))
    };
    let (t, e) = r.trim().split_once('/').ok_or_else(bad)?;
    Ok((t.to_owned(), e.parse().map_err(|_| bad())?))
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Add an operator; the password is read from standard input (--password-stdin) or asked for.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// For a tenant_admin: a tenant it may act on (repeat for several).
        #[arg(long)]
        tenant: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make a token (msp_admin); its secret is printed this once.
    Create {
        /// What the audit calls it (`token:NAME`).
        name: String,
        /// technician, tenant_admin or auditor.
        #[arg(long)]
        role: String,
        /// The tenant a tenant_admin token acts on.
        #[arg(long)]
        tenant: Option<String>,
        /// Days until it stops working; without it, until revoked.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Every token made, with its last use (no secret).
    List,
    /// Revoke a token: refused from its next request on.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum AuditCmd {
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// A page of entries (newest first) filtered like the app's audit screen, each with the
    /// fields it changed; `--before ID` (the last page's `next_before`) gives the next page.
    Search {
        #[command(flatten)]
        filter: AuditArgs,
        #[arg(long)]
        before: Option<i64>,
        /// Entries a page (at most 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The entries of a filter as CSV (to standard output, or --out FILE).
    Export {
        #[command(flatten)]
        filter: AuditArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
struct AuditArgs {
    #[arg(long)]
    tenant: Option<String>,
    /// Who: an operator, token:NAME, user:TENANT/EXT, phone:TENANT/EXT.
    #[arg(long)]
    actor: Option<String>,
    /// One action, e.g. user.update, users.import, pbx.apply.
    #[arg(long)]
    action: Option<String>,
    /// What kind of thing: user, device, did, tenant, pbx, trunk, policy, operator, api_token.
    #[arg(long)]
    kind: Option<String>,
    /// From this day (2026-12-03, UTC) or time (RFC 3339) on.
    #[arg(long)]
    since: Option<String>,
    /// Before this day or time.
    #[arg(long)]
    until: Option<String>,
}

impl AuditArgs {
    fn filter(&self, before: Option<i64>, limit: Option<u32>) -> Result<AuditFilter, Error> {
        let time = |field: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| pbxdesk_core::domain::parse_time(field, s))
                .transpose()
        };
        Ok(AuditFilter {
            tenant: self.tenant.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            entity_type: self.kind.clone(),
            from: time("since", &self.since)?,
            to: time("until", &self.until)?,
            before,
            limit,
        })
    }
}

#[derive(Subcommand)]
enum DemoCmd {
    /// Adds a demo PBX, two tenants and a few users, if the workspace has no PBX yet.
    Seed,
}

fn parse_ssh_auth(s: &str) -> Result<SshAuth, String> {
    SshAuth::parse(s).map_err(|e| e.rule)
}
fn parse_via(s: &str) -> Result<Via, String> {
    Via::parse(s).map_err(|e| e.rule)
}
fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.rule)
}
fn parse_user_role(s: &str) -> Result<UserRole, String> {
    UserRole::parse(s).map_err(|e| e.rule)
}
fn parse_transport(s: &str) -> Result<Transport, String> {
    Transport::parse(s).map_err(|e| e.rule)
}

/// Set by a command whose output is printed although it failed (a rolled-back apply).
static FAILED_EXIT: AtomicU8 = AtomicU8::new(0);

/// `pbx check` ran, and at least one check failed.
const CHECK_FAILED_EXIT: u8 = 9;

fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Validation => 3,
        ErrorCode::NotFound => 4,
        ErrorCode::Conflict => 5,
        ErrorCode::Forbidden | ErrorCode::Unauthenticated => 6,
        ErrorCode::Key => 7,
        ErrorCode::Busy => 8,
        ErrorCode::Internal => 1,
        ErrorCode::Refused => 10,
        ErrorCode::Unreachable => 11,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PBXDESK_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            print_ok(out.as_ref(), json);
            match FAILED_EXIT.load(Ordering::Relaxed) {
                0 => ExitCode::SUCCESS,
                code => ExitCode::from(code),
            }
        }
        Err(e) => {
            print_error(&e, json);
            ExitCode::from(exit_code(e.code()))
        }
    }
}

/// `apply --pbx`: each step printed as it ends; a failed apply's report is the output and its
/// code the exit code.
async fn apply_one(
    ws: &Workspace,
    me: &Actor,
    pbx: &str,
    opts: &ApplyOptions,
    previous: bool,
    json: bool,
) -> Result<pbxdesk_core::service::ApplyReport, Error> {
    let source = if previous {
        ApplySource::PreviousApply
    } else {
        ApplySource::Workspace
    };
    // People see each step as it ends (an apply takes seconds); scripts get the report.
    let progress: Option<Progress> = if json {
        None
    } else {
        Some(std::sync::Arc::new(|st: &ApplyStep| {
            eprintln!("{}", output::step_line(st))
        }))
    };
    let report = ws.pbx_apply_with(me, pbx, opts, source, progress).await?;
    if let Some(code) = report.failure_code() {
        // The report is the output (one document with --json); the exit code says the
        // configuration did not change.
        FAILED_EXIT.store(exit_code(code), Ordering::Relaxed);
        if !json {
            eprintln!(
                "error: the apply failed at \"{}\"; {}",
                report.failed.map(|k| k.label()).unwrap_or_default(),
                if report.outcome == ApplyOutcome::RolledBack {
                    "the PBX was restored to what it ran before"
                } else {
                    "nothing on the PBX was changed"
                }
            );
        }
    }
    Ok(report)
}

/// `import users|dids`: the file read whole (or standard input), progress on a terminal, exit
/// 3 when the report lists problems (nothing was written then).
async fn import(
    ws: &Workspace,
    me: &Actor,
    cmd: &ImportCmd,
    json: bool,
) -> Result<pbxdesk_core::model::ImportReport, Error> {
    use pbxdesk_core::model::{ImportKey, ImportProgress};
    use std::io::IsTerminal;
    let file = match cmd {
        ImportCmd::Users { file, .. } | ImportCmd::Dids { file, .. } => file,
    };
    let mut bytes = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| {
        pbxdesk_core::ValidationError::new(
            "file",
            &file.display().to_string(),
            format!("cannot be read: {e}"),
        )
    })?;
    let show = !json && std::io::stderr().is_terminal();
    let progress = move |p: ImportProgress| {
        if show {
            eprint!("\rwriting {}/{} rows", p.done, p.total);
            if p.done == p.total {
                eprintln!();
            }
        }
    };
    let report = match cmd {
        ImportCmd::Users {
            tenant,
            dry_run,
            key,
            ..
        } => {
            let key = match key {
                MatchKey::Email => ImportKey::Email,
                MatchKey::Extension => ImportKey::Extension,
            };
            ws.users_import(me, tenant, &bytes, key, *dry_run, &progress)
                .await?
        }
        ImportCmd::Dids {
            tenant, dry_run, ..
        } => {
            ws.dids_import(me, tenant, &bytes, *dry_run, &progress)
                .await?
        }
    };
    if !report.errors.is_empty() {
        FAILED_EXIT.store(exit_code(ErrorCode::Validation), Ordering::Relaxed);
    }
    Ok(report)
}

/// `apply --all-pending`: each PBX's line as its apply ends; the exit code of the worst.
async fn apply_fleet(
    ws: &Workspace,
    me: &Actor,
    opts: &ApplyOptions,
    parallel: usize,
    json: bool,
) -> Result<pbxdesk_core::service::FleetReport, Error> {
    let progress: Option<pbxdesk_core::service::FleetProgress> = if json {
        None
    } else {
        Some(std::sync::Arc::new(
            |l: &pbxdesk_core::service::FleetLine| eprintln!("{}", output::fleet_line(l)),
        ))
    };
    let report = ws.pbx_apply_pending(me, opts, parallel, progress).await?;
    if let Some(code) = report.worst {
        FAILED_EXIT.store(exit_code(code), Ordering::Relaxed);
    }
    Ok(report)
}

fn open_options(cli: &Cli) -> OpenOptions {
    let passphrase = std::env::var("PBXDESK_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())
        .map(SecretString::from);
    OpenOptions::choose(
        cli.database_url.clone().map(SecretString::from),
        cli.workspace.clone(),
        cli.key_file.clone(),
        passphrase,
    )
}

fn read_secret_stdin(what: &str) -> Result<SecretString, Error> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Error::Store(format!("cannot read {what} from standard input: {e}")))?;
    Ok(SecretString::from(
        s.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> Result<bool, Error> {
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::Store(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn prompt_secret(prompt: &str) -> Result<SecretString, Error> {
    rpassword::prompt_password(prompt)
        .map(SecretString::from)
        .map_err(|e| Error::Unauthenticated(format!("cannot read the password: {e}")))
}

async fn actor(ws: &Workspace, cli: &Cli) -> Result<Actor, Error> {
    match &cli.operator {
        Some(name) => {
            let password = match std::env::var("PBXDESK_PASSWORD") {
                Ok(p) if !p.is_empty() => SecretString::from(p),
                _ => prompt_secret(&format!("password for operator {name}: "))?,
            };
            ws.login(name, &password).await
        }
        None => ws.local_owner(),
    }
    .map(|a| a.from_source("cli"))
}

async fn run(cli: Cli) -> Result<Box<dyn Show>, Error> {
    // The version needs no workspace (and must work where none can be opened).
    if let Command::Version {
        check,
        endpoint,
        ca_file,
    } = &cli.command
    {
        let update = match check {
            true => Some(version::check(endpoint.as_deref(), ca_file.as_deref()).await?),
            false => None,
        };
        return Ok(Box::new(version::VersionReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            update,
        }));
    }
    let ws = Workspace::open(open_options(&cli)).await?;
    let out = dispatch(&ws, &cli).await;
    ws.close().await;
    out
}

async fn dispatch(ws: &Workspace, cli: &Cli) -> Result<Box<dyn Show>, Error> {
    if let Command::Serve {
        listen,
        tls_cert,
        tls_key,
        tls,
        cors_origins,
    } = &cli.command
    {
        let sqlite = cli
            .workspace
            .clone()
            .unwrap_or_else(pbxdesk_core::paths::default_workspace);
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => pbxdesk_api::Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if *tls || !listen.ip().is_loopback() => pbxdesk_api::Tls::SelfSigned {
                dir: pbxdesk_core::paths::api_tls_dir(
                    cli.database_url.is_none().then_some(sqlite.as_path()),
                ),
            },
            _ => pbxdesk_api::Tls::Off,
        };
        let bound = pbxdesk_api::bind(ws.clone(), *listen, &tls)
            .map_err(|e| Error::Conflict(format!("cannot serve the API on {listen}: {e}")))?
            .allow_origins(cors_origins)?;
        // Each request logs in for itself: the server has no operator of its own.
        eprintln!(
            "pbxdesk: serving the API on {} (OpenAPI: /api/v1/openapi.json); Ctrl-C stops it",
            bound.url()
        );
        if let Some(fp) = bound.fingerprint() {
            let made = if bound.made_certificate() {
                " (self-signed, made now and kept)"
            } else {
                ""
            };
            eprintln!("pbxdesk: certificate SHA-256 fingerprint{made}: {fp}");
        }
        let ended = bound.run().await;
        return Err(match ended {
            Err(e) => Error::Conflict(format!("cannot serve the API on {listen}: {e}")),
            Ok(()) => Error::Store("the API server stopped".into()),
        });
    }
    if let Command::Operator(OperatorCmd::Add {
        username,
        role,
        tenant,
        password_stdin,
    }) = &cli.command
    {
        // The first operator of a team workspace is added without a login.
        let me = match (&cli.operator, ws.local_owner()) {
            (None, Ok(owner)) => Some(owner.from_source("cli")),
            (None, Err(_)) => None,
            (Some(_), _) => Some(actor(ws, cli).await?),
        };
        let password = if *password_stdin {
            read_secret_stdin("the password")?
        } else {
            prompt_secret("new operator's password: ")?
        };
        return Ok(Box::new(
            ws.operator_add(me.as_ref(), username, *role, tenant, &password)
                .await?,
        ));
    }
    let me = actor(ws, cli).await?;
    with_actor(ws, &me, &cli.command, cli.json).await
}

async fn with_actor(
    ws: &Workspace,
    me: &Actor,
    command: &Command,
    json: bool,
) -> Result<Box<dyn Show>, Error> {
    Ok(match command {
        Command::Pbx(PbxCmd::Add { name, profile }) => Box::new(
            ws.pbx_add(
                me,
                &NewPbx {
                    name: name.clone(),
                    profile: profile.patch(None)?,
                },
            )
            .await?,
        ),
        Command::Pbx(PbxCmd::Update {
            name,
            profile,
            expected_version,
        }) => Box::new(
            ws.pbx_update(me, name, &profile.patch(*expected_version)?)
                .await?,
        ),
        Command::Pbx(PbxCmd::Show { name }) => Box::new(ws.pbx_show(me, name).await?),
        Command::Pbx(PbxCmd::Remove { name }) => Box::new(ws.pbx_remove(me, name).await?),
        Command::Pbx(PbxCmd::Trust {
            name,
            fingerprint,
            yes,
        }) => {
            let fp = match fingerprint {
                Some(fp) => fp.clone(),
                None => {
                    let offered = ws.pbx_probe_host_key(me, name).await?;
                    if !*yes && !confirm(&format!(
                        "PBX {name} offers the host key {offered}.\nCompare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the PBX. Trust it? [y/N] "
                    ))? {
                        return Err(Error::Conflict("the host key was not trusted; nothing was changed".into()));
                    }
                    offered
                }
            };
            Box::new(ws.pbx_trust(me, name, &fp).await?)
        }
        Command::Pbx(PbxCmd::Check { name }) => {
            let lines = ws.pbx_check(me, name).await?;
            if lines.iter().any(|l| !l.ok) {
                // Scripts branch on the exit code; the lines (or JSON) say which check failed.
                FAILED_EXIT.store(CHECK_FAILED_EXIT, Ordering::Relaxed);
            }
            Box::new(lines)
        }
        Command::Pbx(PbxCmd::Status { name, watch }) | Command::Status { pbx: name, watch } => {
            let mut rx = ws.pbx_watch(me, name).await?;
            // The first connection's outcome: the state, or why it failed.
            let first = rx
                .wait_for(|l| l.connected || l.last_error.is_some())
                .await
                .map(|l| l.clone())
                .map_err(|_| Error::Store("the watcher stopped".into()))?;
            if !first.connected && !*watch {
                return Err(Error::Unreachable(format!(
                    "PBX \"{name}\": {}",
                    first.last_error.unwrap_or_default()
                )));
            }
            if !*watch {
                return Ok(Box::new(first));
            }
            loop {
                let now = rx.borrow_and_update().clone();
                if json {
                    println!("{}", serde_json::to_string(&now).unwrap_or_default());
                } else {
                    println!("{}", output::live_line(&now));
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Store("the watcher stopped".into()));
                }
            }
        }
        Command::Pbx(PbxCmd::List) => Box::new(ws.pbx_list(me).await?),
        Command::Tenant(cmd) => match cmd {
            TenantCmd::Create {
                name,
                slug,
                pbx,
                ext_range,
                country,
            } => Box::new(
                ws.tenant_create(
                    me,
                    &NewTenant {
                        name: name.clone(),
                        slug: slug.clone(),
                        pbx: pbx.clone(),
                        ext_range: ext_range.clone(),
                        country: country.clone(),
                    },
                )
                .await?,
            ),
            TenantCmd::List => Box::new(ws.tenant_list(me).await?),
            TenantCmd::Show { slug } => Box::new(ws.tenant_show(me, slug).await?),
            TenantCmd::Update {
                slug,
                name,
                ext_range,
                country,
                unknown_did,
                caller_id,
                default_policy,
                expected_version,
            } => Box::new(
                ws.tenant_update(
                    me,
                    slug,
                    &TenantPatch {
                        name: name.clone(),
                        ext_range: ext_range.clone(),
                        country: country.clone(),
                        unknown_did: unknown_did.clone(),
                        caller_id: caller_id.clone(),
                        default_policy: default_policy.clone(),
                        expected_version: *expected_version,
                    },
                )
                .await?,
            ),
            TenantCmd::Suspend { slug } => Box::new(
                ws.tenant_set_status(me, slug, TenantStatus::Suspended)
                    .await?,
            ),
            TenantCmd::Resume { slug } => {
                Box::new(ws.tenant_set_status(me, slug, TenantStatus::Active).await?)
            }
        },
        Command::User(cmd) => match cmd {
            UserCmd::Create {
                tenant,
                name,
                email,
                extension,
                role,
                caller_id,
                no_voicemail,
            } => Box::new(
                ws.user_create(
                    me,
                    &NewUser {
                        tenant: tenant.clone(),
                        name: name.clone(),
                        email: email.clone(),
                        extension: extension.clone(),
                        role: *role,
                        outbound_caller_id: caller_id.clone(),
                        voicemail: Some(!no_voicemail),
                    },
                )
                .await?,
            ),
            UserCmd::List { tenant } => Box::new(ws.user_list(me, tenant).await?),
            UserCmd::Show { user } => {
                Box::new(ws.user_show(me, ws.user_resolve(me, user).await?).await?)
            }
            UserCmd::Update { user, patch } => {
                let id = ws.user_resolve(me, user).await?;
                let pin = if patch.voicemail_pin_stdin {
                    Some(
                        secrecy::ExposeSecret::expose_secret(&read_secret_stdin(
                            "the voicemail PIN",
                        )?)
                        .to_owned(),
                    )
                } else {
                    None
                };
                let p = UserPatch {
                    name: patch.name.clone(),
                    email: patch.email.clone(),
                    role: patch.role,
                    outbound_caller_id: patch.caller_id.clone(),
                    voicemail_enabled: patch.voicemail,
                    voicemail_pin: pin,
                    dnd: patch.dnd,
                    forward_always: patch.forward_always.clone(),
                    forward_busy: patch.forward_busy.clone(),
                    forward_no_answer: patch.forward_no_answer.clone(),
                    ring_seconds: patch.ring_seconds,
                    policy: patch.policy.clone(),
                    expected_version: patch.expected_version,
                };
                Box::new(ws.user_update(me, id, &p).await?)
            }
            UserCmd::Suspend { user } => Box::new(
                ws.user_set_status(me, ws.user_resolve(me, user).await?, UserStatus::Suspended)
                    .await?,
            ),
            UserCmd::Resume { user } => Box::new(
                ws.user_set_status(me, ws.user_resolve(me, user).await?, UserStatus::Active)
                    .await?,
            ),
            UserCmd::Delete { user } => {
                Box::new(ws.user_delete(me, ws.user_resolve(me, user).await?).await?)
            }
            UserCmd::Invite { user } => {
                Box::new(ws.user_invite(me, ws.user_resolve(me, user).await?).await?)
            }
            UserCmd::RemoveSelfService { user } => Box::new(
                ws.user_self_service_remove(me, ws.user_resolve(me, user).await?)
                    .await?,
            ),
        },
        Command::Device(cmd) => match cmd {
            DeviceCmd::Add {
                user,
                label,
                sip_username,
                transport,
                codecs,
                no_nat,
            } => {
                let id = ws.user_resolve(me, user).await?;
                let input = NewDevice {
                    label: label.clone(),
                    sip_username: sip_username.clone(),
                    transport: *transport,
                    codecs: codecs.clone(),
                    nat: Some(!no_nat),
                };
                Box::new(ws.device_add(me, id, &input).await?)
            }
            DeviceCmd::List { user, tenant } => match (user, tenant) {
                (Some(user), _) => {
                    Box::new(ws.device_list(me, ws.user_resolve(me, user).await?).await?)
                }
                (None, Some(tenant)) => Box::new(ws.device_list_of_tenant(me, tenant).await?),
                // clap already requires one of the two.
                (None, None) => {
                    return Err(pbxdesk_core::ValidationError::new(
                        "user",
                        "",
                        "--user USER or --tenant TENANT",
                    )
                    .into())
                }
            },
            DeviceCmd::Remove { device } => Box::new(
                ws.device_remove(me, ws.device_resolve(me, device).await?)
                    .await?,
            ),
            DeviceCmd::Reveal { device } => Box::new(
                ws.device_reveal(me, ws.device_resolve(me, device).await?)
                    .await?,
            ),
            DeviceCmd::NewPassword { device } => Box::new(
                ws.device_new_password(me, ws.device_resolve(me, device).await?)
                    .await?,
            ),
        },
        Command::Import(cmd) => Box::new(import(ws, me, cmd, json).await?),
        Command::Export(cmd) => {
            let (csv, out, secret) = match cmd {
                ExportCmd::Users {
                    tenant,
                    out,
                    with_secrets,
                } => (
                    ws.users_export(me, tenant, *with_secrets).await?,
                    out,
                    *with_secrets,
                ),
                ExportCmd::Dids { tenant, out } => (ws.dids_export(me, tenant).await?, out, false),
            };
            Box::new(output::Exported::write(csv, out.as_deref(), secret)?)
        }
        Command::RingGroup(cmd) => match cmd {
            RingGroupCmd::Create {
                tenant,
                name,
                extension,
                members,
                strategy,
                member_seconds,
                total_seconds,
                no_answer,
            } => Box::new(
                ws.ring_group_create(
                    me,
                    &NewRingGroup {
                        tenant: tenant.clone(),
                        name: name.clone(),
                        extension: *extension,
                        strategy: *strategy,
                        members: members.clone(),
                        member_seconds: *member_seconds,
                        total_seconds: *total_seconds,
                        no_answer: no_answer.clone(),
                    },
                )
                .await?,
            ),
            RingGroupCmd::List { tenant } => Box::new(ws.ring_group_list(me, tenant).await?),
            RingGroupCmd::Show { group } => {
                let (t, e) = group_ref(group)?;
                Box::new(ws.ring_group_show(me, &t, e).await?)
            }
            RingGroupCmd::Update {
                group,
                name,
                members,
                strategy,
                member_seconds,
                total_seconds,
                no_answer,
                expected_version,
            } => {
                let (t, e) = group_ref(group)?;
                Box::new(
                    ws.ring_group_update(
                        me,
                        &t,
                        e,
                        &RingGroupPatch {
                            name: name.clone(),
                            strategy: *strategy,
                            members: members.clone(),
                            member_seconds: *member_seconds,
                            total_seconds: *total_seconds,
                            no_answer: no_answer.clone(),
                            expected_version: *expected_version,
                        },
                    )
                    .await?,
                )
            }
            RingGroupCmd::Delete { group } => {
                let (t, e) = group_ref(group)?;
                Box::new(ws.ring_group_delete(me, &t, e).await?)
            }
        },
        Command::Did(cmd) => match cmd {
            DidCmd::Add {
                tenant,
                number,
                country,
                label,
                destination,
                trunk,
            } => Box::new(
                ws.did_add(
                    me,
                    &NewDid {
                        tenant: tenant.clone(),
                        number: number.clone(),
                        country: country.clone(),
                        label: label.clone(),
                        destination: destination.clone(),
                        trunk: trunk.clone(),
                    },
                )
                .await?,
            ),
            DidCmd::List { tenant } => Box::new(ws.did_list(me, tenant).await?),
            DidCmd::Update {
                number,
                label,
                destination,
                trunk,
                expected_version,
            } => Box::new(
                ws.did_update(
                    me,
                    number,
                    &DidPatch {
                        label: label.clone(),
                        destination: destination.clone(),
                        trunk: trunk.clone(),
                        expected_version: *expected_version,
                    },
                )
                .await?,
            ),
            DidCmd::Remove { number } => Box::new(ws.did_remove(me, number).await?),
        },
        Command::Trunk(cmd) => trunk(ws, me, cmd).await?,
        Command::Policy(cmd) => policy(ws, me, cmd).await?,
        Command::Render {
            pbx,
            out,
            with_secrets,
        } => Box::new(ws.pbx_render_to(me, pbx, *with_secrets, out).await?),
        Command::Diff { pbx } => Box::new(ws.pbx_diff(me, pbx).await?),
        Command::History { pbx, limit } => Box::new(ws.pbx_apply_history(me, pbx, *limit).await?),
        Command::Apply {
            pbx,
            all_pending,
            parallel,
            dry_run,
            overwrite_drift,
            add_includes,
            confirm_seconds,
            previous,
        } => {
            let opts = ApplyOptions {
                dry_run: *dry_run,
                overwrite_drift: *overwrite_drift,
                add_includes: *add_includes,
                confirm_seconds: Some(*confirm_seconds),
            };
            match pbx {
                Some(pbx) if !*all_pending => {
                    Box::new(apply_one(ws, me, pbx, &opts, *previous, json).await?)
                }
                _ => Box::new(apply_fleet(ws, me, &opts, *parallel, json).await?),
            }
        }
        Command::Trace { pbx, number, from } => {
            Box::new(ws.pbx_trace(me, pbx, number, from.as_deref()).await?)
        }
        Command::Operator(OperatorCmd::List) => Box::new(ws.operator_list(me).await?),
        Command::Token(TokenCmd::Create {
            name,
            role,
            tenant,
            expires_in_days,
        }) => Box::new(
            ws.api_token_create(
                me,
                &NewApiToken {
                    name: name.clone(),
                    role: role.clone(),
                    tenant: tenant.clone(),
                    expires_in_days: *expires_in_days,
                },
            )
            .await?,
        ),
        Command::Token(TokenCmd::List) => Box::new(ws.api_token_list(me).await?),
        Command::Token(TokenCmd::Revoke { name }) => Box::new(ws.api_token_revoke(me, name).await?),
        Command::Operator(OperatorCmd::Add { .. }) => {
            return Err(Error::Store("operator add is handled before login".into()));
        }
        Command::Serve { .. } => {
            return Err(Error::Store("serve is handled before login".into()));
        }
        Command::Version { .. } => {
            return Err(Error::Store(
                "version is handled before the workspace opens".into(),
            ));
        }
        Command::Audit(AuditCmd::Search {
            filter,
            before,
            limit,
        }) => Box::new(
            ws.audit_page(me, &filter.filter(*before, Some(*limit))?)
                .await?,
        ),
        Command::Audit(AuditCmd::Export { filter, out }) => Box::new(output::Exported::write(
            ws.audit_export(me, &filter.filter(None, None)?).await?,
            out.as_deref(),
            false,
        )?),
        Command::Audit(AuditCmd::List { tenant, limit }) => Box::new(
            ws.audit_list(
                me,
                &AuditQuery {
                    tenant: tenant.clone(),
                    limit: Some(*limit),
                },
            )
            .await?,
        ),
        Command::Demo(DemoCmd::Seed) => {
            Box::new(output::Seeded(pbxdesk_core::demo::seed(ws, me).await?))
        }
    })
}

impl TrunkArgs {
    fn patch(&self, expected_version: Option<i64>) -> Result<TrunkPatch, Error> {
        let password = if self.password_stdin {
            let p = read_secret_stdin("the trunk's password")?;
            // An empty line would clear the stored password: refuse it rather than lose it.
            if p.expose_secret().is_empty() {
                return Err(pbxdesk_core::ValidationError::secret(
                    "password",
                    "one non-empty line on standard input",
                )
                .into());
            }
            Some(p.expose_secret().to_owned())
        } else {
            None
        };
        Ok(TrunkPatch {
            host: self.host.clone(),
            port: self.port,
            transport: self.transport,
            register: self.register,
            username: self.username.clone(),
            password,
            from_domain: self.from_domain.clone(),
            from_user: self.from_user.clone(),
            codecs: self.codecs.clone(),
            enabled: self.enabled,
            tenants: self.tenants.clone(),
            expected_version,
        })
    }
}

async fn trunk(ws: &Workspace, me: &Actor, cmd: &TrunkCmd) -> Result<Box<dyn Show>, Error> {
    Ok(match cmd {
        TrunkCmd::Add { pbx, name, args } => {
            let p = args.patch(None)?;
            let input = NewTrunk {
                pbx: pbx.clone(),
                name: name.clone(),
                host: p.host.clone().unwrap_or_default(),
                port: p.port,
                transport: p.transport,
                register: p.register.unwrap_or(false),
                username: p.username,
                password: p.password,
                from_domain: p.from_domain,
                from_user: p.from_user,
                codecs: p.codecs,
                enabled: p.enabled,
                tenants: p.tenants.unwrap_or_default(),
            };
            Box::new(ws.trunk_add(me, &input).await?)
        }
        TrunkCmd::List { pbx } => Box::new(ws.trunk_list(me, pbx.as_deref()).await?),
        TrunkCmd::Show { pbx, name } => Box::new(ws.trunk_show(me, pbx, name).await?),
        TrunkCmd::Update {
            pbx,
            name,
            args,
            expected_version,
        } => Box::new(
            ws.trunk_update(me, pbx, name, &args.patch(*expected_version)?)
                .await?,
        ),
        TrunkCmd::Remove { pbx, name } => Box::new(ws.trunk_remove(me, pbx, name).await?),
    })
}

fn rules(specs: &[String]) -> Result<Vec<PolicyRule>, Error> {
    specs
        .iter()
        .map(|s| parse_rule(s).map_err(Error::from))
        .collect()
}

async fn policy(ws: &Workspace, me: &Actor, cmd: &PolicyCmd) -> Result<Box<dyn Show>, Error> {
    Ok(match cmd {
        PolicyCmd::Add {
            tenant,
            name,
            rules: specs,
            default,
        } => Box::new(
            ws.policy_add(
                me,
                &NewPolicy {
                    tenant: tenant.clone(),
                    name: name.clone(),
                    rules: rules(specs)?,
                    make_default: *default,
                },
            )
            .await?,
        ),
        PolicyCmd::List { tenant } => Box::new(ws.policy_list(me, tenant).await?),
        PolicyCmd::Show { tenant, name } => Box::new(ws.policy_show(me, tenant, name).await?),
        PolicyCmd::Update {
            tenant,
            name,
            rules: specs,
            expected_version,
        } => Box::new(
            ws.policy_update(
                me,
                tenant,
                name,
                &PolicyPatch {
                    rules: Some(rules(specs)?),
                    expected_version: *expected_version,
                },
            )
            .await?,
        ),
        PolicyCmd::RuleAdd {
            tenant,
            policy,
            at,
            rule,
        } => Box::new(
            ws.policy_rule_insert(me, tenant, policy, *at, parse_rule(rule)?)
                .await?,
        ),
        PolicyCmd::RuleRemove {
            tenant,
            policy,
            position,
        } => Box::new(ws.policy_rule_remove(me, tenant, policy, *position).await?),
        PolicyCmd::Remove { tenant, name } => Box::new(ws.policy_remove(me, tenant, name).await?),
    })
}
