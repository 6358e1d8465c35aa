//! Command-line arguments.

use crate::exit::EXIT_CODES;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// phivault: an encrypted vault for protected health information.
#[derive(Parser, Debug)]
#[command(name = "phivault", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub cmd: Command,
}

/// Where the root key comes from: `--key-file`, `--passphrase-file`, a PKCS#11 token
/// (`--pkcs11-token`), else `PHIVAULT_PASSPHRASE`, else a prompt. In that order of precedence.
#[derive(Args, Debug, Clone)]
pub struct RootArgs {
    /// File holding the 32-byte root key (raw, or 64 hex digits).
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_file")]
    pub key_file: Option<PathBuf>,
    /// File whose first line is the passphrase.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The root key is an AES key on the PKCS#11 token with this label (an HSM). The user PIN
    /// comes from --pkcs11-pin-file, else PHIVAULT_PKCS11_PIN, else a prompt.
    #[arg(long, value_name = "LABEL", env = "PHIVAULT_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// The token's PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "FILE", env = "PHIVAULT_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the key on the token that `init` wraps a new vault with (generated on the token,
    /// sensitive and non-extractable, if absent). Opening uses the label in the vault header.
    #[arg(
        long,
        value_name = "LABEL",
        env = "PHIVAULT_PKCS11_KEY",
        default_value = "phivault-root"
    )]
    pub pkcs11_key: String,
    /// File whose first line is the token's user PIN.
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

/// The vault directory and its root key.
#[derive(Args, Debug, Clone)]
pub struct VaultArgs {
    /// The vault directory.
    #[arg(long, value_name = "DIR", env = "PHIVAULT_VAULT")]
    pub vault: PathBuf,
    #[command(flatten)]
    pub root: RootArgs,
    /// Threads for batch work (rewrap, tokenize-csv, batches): 0 = one per core, 1 = none.
    #[arg(long, value_name = "N", default_value_t = 0, env = "PHIVAULT_THREADS")]
    pub threads: usize,
}

/// Who a data command acts as. Only the commands that go through the policy (encrypt,
/// decrypt, put, get, delete, tokenize, detokenize, tokenize-csv, encrypt-file, decrypt-file)
/// take these; every other command is the owner's and refuses `--as` as a usage error, so a
/// flag is never accepted and then ignored.
#[derive(Args, Debug, Clone)]
pub struct CallerArgs {
    /// Act as this principal of the vault's policy (default: the owner).
    #[arg(long = "as", value_name = "PRINCIPAL")]
    pub principal: Option<String>,
    /// The purpose of the access, checked against the policy and logged.
    #[arg(long, default_value = "operations")]
    pub purpose: String,
    /// Break the glass: an emergency override with this stated reason (flagged for review).
    #[arg(long, value_name = "REASON")]
    pub break_glass: Option<String>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new vault (directory mode 0700, files 0600) with a `default` keyring.
    #[command(
        after_help = "Examples:\n  phivault keygen root.key\n  phivault init --vault ./vault --key-file root.key\n  PHIVAULT_PASSPHRASE=... phivault init --vault ./vault --argon-memory-mib 256\n  PHIVAULT_PKCS11_PIN=... phivault init --vault ./vault --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token hsm1 --pkcs11-key vault-root-1"
    )]
    Init {
        #[command(flatten)]
        vault: VaultArgs,
        /// Argon2id memory in MiB (passphrase vaults; default 64, RFC 9106).
        #[arg(long, value_name = "MIB")]
        argon_memory_mib: Option<u32>,
        /// Argon2id passes (default 3).
        #[arg(long, value_name = "N")]
        argon_passes: Option<u32>,
        /// Argon2id lanes (default 4).
        #[arg(long, value_name = "N")]
        argon_lanes: Option<u32>,
    },
    /// Write a new random 32-byte root key file (mode 0600; refuses to overwrite).
    #[command(after_help = "Example:\n  phivault keygen /secure/root.key")]
    Keygen {
        /// The file to create.
        file: PathBuf,
    },
    /// Encrypt stdin to stdout, bound to a context.
    #[command(
        after_help = "Examples:\n  phivault encrypt --vault ./vault --key-file root.key --context record=4711 --context field=note <note.txt >note.pv\n  echo -n 123-45-6789 | phivault encrypt --vault ./vault --key-file root.key --text --deterministic --context field=ssn"
    )]
    Encrypt {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Context pair KEY=VALUE (repeatable, order matters).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// Keyring to encrypt under.
        #[arg(long, default_value = "default")]
        keyring: String,
        /// Deterministic encryption (AES-SIV): equal inputs give equal outputs.
        #[arg(long, conflicts_with = "subject")]
        deterministic: bool,
        /// Write the text form (pv1:KEYRING:VERSION:BASE64URL) plus a newline.
        #[arg(long)]
        text: bool,
        /// Tie the ciphertext to a data subject (erased by forget-subject).
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
    },
    /// Decrypt stdin (binary or text form) to stdout; the context must match.
    #[command(
        after_help = "Example:\n  phivault decrypt --vault ./vault --key-file root.key --context record=4711 --context field=note <note.pv"
    )]
    Decrypt {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Context pair KEY=VALUE (repeatable, same order as at encryption).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
    },
    /// Store stdin as record ID of COLLECTION.
    #[command(
        after_help = "Example:\n  phivault put --vault ./vault --key-file root.key notes MRN-4711 --subject patient-4711 <note.txt"
    )]
    Put {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Collection name.
        collection: String,
        /// Record id (stored only as a keyed hash).
        id: String,
        /// Tie the record to a data subject.
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
        /// Keyring to encrypt under (default: `default`). Naming one also needs `encrypt` on
        /// that keyring when acting as a principal.
        #[arg(long)]
        keyring: Option<String>,
    },
    /// Print record ID of COLLECTION to stdout.
    #[command(
        after_help = "Example:\n  phivault get --vault ./vault --key-file root.key notes MRN-4711"
    )]
    Get {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Collection name.
        collection: String,
        /// Record id.
        id: String,
    },
    /// Delete record ID of COLLECTION.
    #[command(
        after_help = "Example:\n  phivault delete --vault ./vault --key-file root.key notes MRN-4711"
    )]
    Delete {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Collection name.
        collection: String,
        /// Record id.
        id: String,
    },
    /// Show keyrings, key versions and record counts per version.
    #[command(
        after_help = "Example:\n  phivault status --vault ./vault --key-file root.key --json"
    )]
    Status {
        #[command(flatten)]
        vault: VaultArgs,
        /// Print JSON (stable field names) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent, encrypted, authenticated backup of a live vault to OUT; or
    /// `backup verify IN` to check one (no key needed).
    Backup(crate::backup::BackupArgs),
    /// Restore a backup into a new vault directory (all or nothing).
    Restore(crate::backup::RestoreArgs),
    /// Read and authenticate every entry of the vault; report counts and problems by location.
    Verify(crate::integrity::VerifyArgs),
    /// Copy every entry that still authenticates out of a damaged vault into a new one.
    Salvage(crate::integrity::SalvageArgs),
    /// M-of-N recovery shares of the vault master key: split, and unlock a lost root.
    Recovery {
        /// The recovery command.
        #[command(subcommand)]
        cmd: crate::backup::RecoveryCommand,
    },
    /// Manage keyrings and key versions.
    Keys {
        /// The keys command.
        #[command(subcommand)]
        cmd: KeysCommand,
    },
    /// Move every record and subject key to its keyring's active key version (header-only,
    /// payloads untouched). Resumable, idempotent, safe beside running applications.
    #[command(
        after_help = "Examples:\n  phivault rewrap --vault ./vault --key-file root.key\n  phivault rewrap --vault ./vault --key-file root.key --keyring notes --batch 5000 --json"
    )]
    Rewrap {
        #[command(flatten)]
        vault: VaultArgs,
        /// Only this keyring.
        #[arg(long)]
        keyring: Option<String>,
        /// Records per durable batch and checkpoint.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Print the final report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rewrap envelopes kept outside the vault: one text-form envelope per stdin line, or one
    /// binary envelope on stdin, to stdout. The context binding is kept.
    #[command(
        after_help = "Example:\n  cut -d, -f3 notes.csv | phivault rewrap-envelope --vault ./vault --key-file root.key"
    )]
    RewrapEnvelope {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Change the root key: a new passphrase or key file. Only the vault master key is
    /// rewrapped.
    #[command(
        after_help = "Examples:\n  phivault rotate-root --vault ./vault --key-file old.key --new-key-file new.key\n  phivault rotate-root --vault ./vault --key-file old.key --new-passphrase-file pass.txt\n  PHIVAULT_PKCS11_PIN=... phivault rotate-root --vault ./vault --key-file old.key --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token hsm1 --new-pkcs11-key vault-root-2"
    )]
    RotateRoot {
        #[command(flatten)]
        vault: VaultArgs,
        /// The new 32-byte key file.
        #[arg(long, value_name = "FILE", conflicts_with = "new_passphrase_file")]
        new_key_file: Option<PathBuf>,
        /// A file whose first line is the new passphrase (else PHIVAULT_NEW_PASSPHRASE, else a
        /// prompt).
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// The new root is the key with this label on the PKCS#11 token named by
        /// --pkcs11-token (generated there if absent). Destroy the old key on the token
        /// afterwards.
        #[arg(long, value_name = "LABEL", conflicts_with_all = ["new_key_file", "new_passphrase_file"])]
        new_pkcs11_key: Option<String>,
    },
    /// Destroy a data subject's key: all of the subject's records and envelopes become
    /// unrecoverable at once. The erasure is recorded (without the id).
    #[command(
        after_help = "Example:\n  phivault forget-subject --vault ./vault --key-file root.key patient-4711"
    )]
    ForgetSubject {
        #[command(flatten)]
        vault: VaultArgs,
        /// The subject id.
        id: String,
    },
    /// List recorded erasures (time and keyed hash of the subject id).
    #[command(
        after_help = "Example:\n  phivault erasures --vault ./vault --key-file root.key --json"
    )]
    Erasures {
        #[command(flatten)]
        vault: VaultArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tokenize stdin lines (one value per line) to stdout lines.
    #[command(
        after_help = "Examples:\n  phivault tokenize --vault ./vault --key-file root.key --field ssn < ssns.txt > tokens.txt\n  echo 1961-04-12 | phivault tokenize --vault ./vault --key-file root.key --field dob --subject patient-1"
    )]
    Tokenize {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Field name (a preset such as ssn, mrn, phone, email, name, zip, dob, pseudonym, or a
        /// defined field).
        #[arg(long)]
        field: String,
        /// The data subject the values belong to (required for fields tied to subjects).
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
    },
    /// Detokenize stdin lines to stdout lines.
    #[command(
        after_help = "Examples:\n  phivault detokenize --vault ./vault --key-file root.key --field ssn < tokens.txt\n  phivault detokenize --vault ./vault --key-file root.key --field ssn --view masked < tokens.txt"
    )]
    Detokenize {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Field name.
        #[arg(long)]
        field: String,
        /// plaintext, masked or redacted.
        #[arg(long, default_value = "plaintext")]
        view: String,
        /// The data subject (for date-shift and other subject-bound fields).
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
    },
    /// Tokenize columns of a CSV file of any size (streaming, constant memory). The output is
    /// written beside OUT and renamed into place when complete.
    #[command(
        after_help = "Example:\n  phivault tokenize-csv --vault ./vault --key-file root.key --fields ssn=ssn,mrn=mrn patients.csv patients.tok.csv"
    )]
    TokenizeCsv {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// COLUMN=FIELD pairs, comma-separated.
        #[arg(long)]
        fields: String,
        /// Column holding each row's data subject (for subject-bound fields such as dob).
        #[arg(long, value_name = "COLUMN")]
        subject_column: Option<String>,
        /// Input CSV (with a header row).
        input: PathBuf,
        /// Output CSV.
        output: PathBuf,
    },
    /// De-identify FHIR R4 (and other JSON) documents by a schema, and re-identify them.
    Fhir {
        /// The fhir command.
        #[command(subcommand)]
        cmd: FhirCommand,
    },
    /// List, show or define tokenization fields.
    Fields {
        /// The fields command.
        #[command(subcommand)]
        cmd: FieldsCommand,
    },
    /// Verify, show and export the audit log.
    Audit {
        /// The audit command.
        #[command(subcommand)]
        cmd: AuditCommand,
    },
    /// Show or set the access policy.
    Policy {
        /// The policy command.
        #[command(subcommand)]
        cmd: PolicyCommand,
    },
    /// Encrypt a file of any size with constant memory (segmented streaming AEAD).
    #[command(
        after_help = "Example:\n  phivault encrypt-file --vault ./vault --key-file root.key --context study=1.2.840.1 --subject patient-4711 scan.dcm scan.dcm.pvs"
    )]
    EncryptFile {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Context pair KEY=VALUE (repeatable, order matters).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// Tie the file to a data subject (erased by forget-subject).
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
        /// Keyring to encrypt under.
        #[arg(long, default_value = "default")]
        keyring: String,
        /// log2 of the segment size (12..=24; default 16 = 64 KiB).
        #[arg(long, default_value_t = 16)]
        segment_log2: u8,
        /// The file to encrypt.
        input: PathBuf,
        /// The encrypted file (written beside it, renamed into place when complete).
        output: PathBuf,
    },
    /// Decrypt a file made by encrypt-file; nothing is written unless all of it authenticates.
    #[command(
        after_help = "Example:\n  phivault decrypt-file --vault ./vault --key-file root.key --context study=1.2.840.1 scan.dcm.pvs scan.dcm"
    )]
    DecryptFile {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        /// Context pair KEY=VALUE (repeatable, same order as at encryption).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// The encrypted file.
        input: PathBuf,
        /// The decrypted file.
        output: PathBuf,
    },
    /// Rewrap encrypted files in place to their keyring's active key version (header only).
    #[command(
        after_help = "Example:\n  find /archive -name '*.pvs' -print0 | xargs -0 phivault rewrap-file --vault ./vault --key-file root.key"
    )]
    RewrapFile {
        #[command(flatten)]
        vault: VaultArgs,
        /// Files to rewrap.
        files: Vec<PathBuf>,
    },
    /// Copy a directory vault into an empty PostgreSQL database and verify every entry.
    #[command(
        after_help = "Example:\n  phivault migrate --from ./vault --to postgres://phivault@db.internal:5432/phivault --key-file root.key"
    )]
    Migrate {
        /// The vault directory to copy.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The database: postgres://user@host:port/db (must hold no vault yet).
        #[arg(long, value_name = "URL")]
        to: String,
        #[command(flatten)]
        root: RootArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the end-to-end tour on a temporary vault with synthetic patients.
    Demo {
        /// Keep the demo vault in this directory instead of a temporary one.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
}

/// `phivault keys ...`
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List keyrings and versions: state, creation time, records and subject keys per version.
    #[command(
        after_help = "Example:\n  phivault keys list --vault ./vault --key-file root.key --json"
    )]
    List {
        #[command(flatten)]
        vault: VaultArgs,
        /// Print JSON (stable field names).
        #[arg(long)]
        json: bool,
    },
    /// Create a keyring with one active version.
    #[command(
        after_help = "Example:\n  phivault keys create --vault ./vault --key-file root.key notes"
    )]
    Create {
        #[command(flatten)]
        vault: VaultArgs,
        /// Keyring name.
        name: String,
    },
    /// Make a new key version active at once (old versions stay decrypt-only).
    #[command(
        after_help = "Examples:\n  phivault keys rotate --vault ./vault --key-file root.key\n  phivault keys rotate notes --if-older-than 90d   # safe to run daily from cron"
    )]
    Rotate {
        #[command(flatten)]
        vault: VaultArgs,
        /// Keyring name.
        #[arg(default_value = "default")]
        keyring: String,
        /// Rotate only if the active version is older than this (e.g. 90d, 12h, 2w, 3600s).
        #[arg(long, value_name = "DURATION")]
        if_older_than: Option<String>,
    },
    /// Refuse decryption under versions below N (reversible until destroyed).
    #[command(
        after_help = "Example:\n  phivault keys retire --vault ./vault --key-file root.key default --min-version 3"
    )]
    Retire {
        #[command(flatten)]
        vault: VaultArgs,
        /// Keyring name.
        keyring: String,
        /// The new minimum decryption version.
        #[arg(long, value_name = "N")]
        min_version: u32,
    },
    /// Wipe a key version for good. Refused while data depends on it, unless --force.
    #[command(
        after_help = "Example:\n  phivault keys destroy --vault ./vault --key-file root.key default 1"
    )]
    Destroy {
        #[command(flatten)]
        vault: VaultArgs,
        /// Keyring name.
        keyring: String,
        /// Version to destroy.
        version: u32,
        /// Destroy even though records depend on it (they become unrecoverable).
        #[arg(long)]
        force: bool,
    },
}

/// `phivault fields ...`
#[derive(Subcommand, Debug)]
pub enum FieldsCommand {
    /// List the fields: presets and defined ones.
    #[command(
        after_help = "Example:\n  phivault fields list --vault ./vault --key-file root.key --json"
    )]
    List {
        #[command(flatten)]
        vault: VaultArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print every field as TOML (a starting point for a schema file).
    #[command(
        after_help = "Example:\n  phivault fields show --vault ./vault --key-file root.key > fields.toml"
    )]
    Show {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Define the fields of a TOML schema file (`[[field]]` tables).
    #[command(
        after_help = "Example:\n  phivault fields define --vault ./vault --key-file root.key fields.toml"
    )]
    Define {
        #[command(flatten)]
        vault: VaultArgs,
        /// The TOML file.
        file: PathBuf,
    },
}

/// `phivault audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole chain and the head anchor; exit 8 if anything was edited, deleted,
    /// reordered or truncated.
    #[command(
        after_help = "Example:\n  phivault audit verify --vault ./vault --key-file root.key --json"
    )]
    Verify {
        #[command(flatten)]
        vault: VaultArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The head anchor recorded elsewhere earlier (SEQ:MACHEX): the log must extend it.
        #[arg(long, value_name = "SEQ:MAC")]
        expect_head: Option<String>,
    },
    /// Show entries.
    #[command(
        after_help = "Examples:\n  phivault audit show --vault ./vault --key-file root.key --since 24h\n  phivault audit show --vault ./vault --key-file root.key --principal dr-house --json"
    )]
    Show {
        #[command(flatten)]
        vault: VaultArgs,
        /// Only entries newer than this: a duration ago (24h, 7d) or Unix seconds.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only this principal.
        #[arg(long = "principal", value_name = "NAME")]
        of_principal: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show break-the-glass reasons (stored encrypted).
        #[arg(long)]
        include_reasons: bool,
    },
    /// List the vault's research jobs (docs/guide-research-engineers.md): live snapshots that
    /// workers can open, and worker audit spools not yet merged into the log.
    #[command(after_help = "Example:\n  phivault audit jobs --vault ./vault --key-file root.key")]
    Jobs {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Merge a job's worker audit spools into the log (verified; a torn last record is
    /// reported and dropped; a spool that does not chain is refused and kept). With `--end`,
    /// first delete the job's snapshot so that no worker can open it again.
    #[command(
        after_help = "Example:\n  phivault audit merge-job --vault ./vault --key-file root.key --end 00112233445566778899aabbccddeeff"
    )]
    MergeJob {
        #[command(flatten)]
        vault: VaultArgs,
        /// End the job too (delete its snapshot).
        #[arg(long)]
        end: bool,
        /// The job id (32 hex digits).
        job: String,
    },
    /// Export every entry as JSON lines (for a SIEM).
    #[command(
        after_help = "Example:\n  phivault audit export --vault ./vault --key-file root.key audit.jsonl"
    )]
    Export {
        #[command(flatten)]
        vault: VaultArgs,
        /// Output file.
        file: PathBuf,
    },
}

/// `phivault policy ...`
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print the policy as TOML.
    #[command(after_help = "Example:\n  phivault policy show --vault ./vault --key-file root.key")]
    Show {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Replace the policy with a TOML file (audited).
    #[command(
        after_help = "Example:\n  phivault policy set --vault ./vault --key-file root.key policy.toml"
    )]
    Set {
        #[command(flatten)]
        vault: VaultArgs,
        /// The policy file.
        file: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

/// The input and output of `phivault fhir deid` and `fhir reid`.
#[derive(Args, Debug, Clone)]
pub struct FhirIo {
    /// The schema: a preset (safe-harbor, shifted-dates), a schema stored in the vault, or a
    /// TOML or JSON file.
    #[arg(long, value_name = "NAME|FILE")]
    pub schema: String,
    /// Input: NDJSON (one resource per line) or, with --format json, one JSON document.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Output, written beside and renamed into place only when complete.
    #[arg(long = "out", value_name = "FILE")]
    pub output: PathBuf,
    /// ndjson or json (default: json for a .json input, else ndjson).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Malformed NDJSON lines: fail (stop, naming the line) or skip (listed in the report).
    #[arg(long, value_name = "skip|fail", default_value = "fail")]
    pub errors: String,
    /// Write the per-rule report (counts, never values) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `phivault fhir ...`
#[derive(Subcommand, Debug)]
pub enum FhirCommand {
    /// De-identify: identifiers tokenized, names and contacts removed, ids and references
    /// pseudonymized, dates cut or shifted, as the schema says.
    #[command(
        after_help = "Examples:\n  phivault fhir deid --vault ./vault --key-file root.key --schema safe-harbor --in Patient.ndjson --out Patient.deid.ndjson\n  phivault fhir deid --vault ./vault --key-file root.key --schema study.toml --format json --in bundle.json --out bundle.deid.json --report report.json"
    )]
    Deid {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        #[command(flatten)]
        io: FhirIo,
    },
    /// Re-identify what deid made reversible (tokens, encrypted elements), as a permitted role.
    #[command(
        after_help = "Example:\n  phivault fhir reid --vault ./vault --key-file root.key --as steward --purpose reid --schema safe-harbor --in Patient.deid.ndjson --out Patient.reid.ndjson"
    )]
    Reid {
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        caller: CallerArgs,
        #[command(flatten)]
        io: FhirIo,
        /// How detokenized values are shown: plaintext, masked or redacted.
        #[arg(long, default_value = "plaintext")]
        view: String,
    },
    /// Store a schema (TOML or JSON file) in the vault under a name.
    #[command(
        after_help = "Example:\n  phivault fhir define-schema --vault ./vault --key-file root.key study-7 study.toml"
    )]
    DefineSchema {
        #[command(flatten)]
        vault: VaultArgs,
        /// The name.
        name: String,
        /// The TOML or JSON file.
        file: PathBuf,
    },
    /// List the schemas: presets and stored ones.
    Schemas {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Print a preset schema as TOML (a starting point for your own).
    ShowPreset {
        /// safe-harbor or shifted-dates.
        name: String,
    },
}
