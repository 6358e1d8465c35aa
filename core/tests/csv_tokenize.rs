//! CSV tokenization (`phivault::csv_tokenize`): round trips, untouched columns, quoting, batches,
//! subjects, and errors that name a row or a column but never a cell.

use phivault::csv_tokenize::{CsvColumns, CsvErrorKind, CsvProgress, CsvReport, tokenize_csv};
use phivault::policy::Caller;
use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::tokens::View;
use phivault::{Error, Key32, Vault, VaultOptions};

fn vault(dir: &tempfile::TempDir) -> Vault {
    Vault::create_with(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::from_slice(&[7u8; 32]).expect("32")),
        VaultOptions::new().durability(Durability::Deferred),
    )
    .expect("create")
}

/// Runs `tokenize_csv` as the owner; returns the result, the output and the progress reports.
fn run(
    v: &Vault,
    columns: &CsvColumns,
    input: &[u8],
) -> (Result<CsvReport, Error>, Vec<u8>, Vec<CsvProgress>) {
    let session = v.session(Caller::owner());
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let r = tokenize_csv(&session, columns, input, &mut out, &mut |p| seen.push(p));
    (r, out, seen)
}

fn parse(data: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(data);
    let header = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = rdr
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

const PATIENTS: &str = "\
mrn,ssn,dob,patient,diagnosis
MRN0012345,900-12-3456,1961-04-12,p1,E11.9
MRN0012346,,1970-01-01,p2,I10
MRN0012345,900-65-4321,,p1,
,900-12-3456,1999-12-31,p3,\"J45.909, mild\"
";

#[test]
fn round_trip_and_untouched_columns() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let columns = CsvColumns::new().column("mrn", "mrn").column("ssn", "ssn");
    let (r, out, progress) = run(&v, &columns, PATIENTS.as_bytes());
    let report = r.expect("tokenize");
    assert_eq!((report.rows, report.columns, report.cells), (4, 2, 6));
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].rows, 4);
    assert_eq!(progress[0].bytes, PATIENTS.len() as u64);

    let (h_in, rows_in) = parse(PATIENTS.as_bytes());
    let (h_out, rows_out) = parse(&out);
    assert_eq!(h_in, h_out, "header kept");
    assert_eq!(rows_in.len(), rows_out.len());
    for (a, b) in rows_in.iter().zip(&rows_out) {
        assert_eq!(a.len(), b.len());
        assert_eq!(a[2..], b[2..], "untouched columns are equal");
        for (col, field) in [(0, "mrn"), (1, "ssn")] {
            if a[col].is_empty() {
                assert!(b[col].is_empty(), "an empty cell stays empty");
                continue;
            }
            assert_ne!(a[col], b[col]);
            let back = v
                .owner()
                .detokenize(field, &b[col], View::Plaintext)
                .expect("detokenize");
            assert_eq!(*back, a[col], "round trip");
        }
    }
    // Consistent tokens: the equal MRNs of rows 1 and 3 have equal tokens (joins survive).
    assert_eq!(rows_out[0][0], rows_out[2][0]);
    assert_eq!(rows_out[0][1], rows_out[3][1]);

    // Byte for byte: lines without quoting keep their untouched columns' bytes.
    let out_text = String::from_utf8(out).expect("utf8");
    for (line_in, line_out) in PATIENTS.lines().zip(out_text.lines()).take(4) {
        let a: Vec<&str> = line_in.split(',').collect();
        let b: Vec<&str> = line_out.split(',').collect();
        assert_eq!(a[2..], b[2..], "{line_in}");
    }
    assert!(out_text.ends_with("\"J45.909, mild\"\n"));
}

#[test]
fn subject_column_ties_tokens_to_subjects() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let columns = CsvColumns::new()
        .column("dob", "dob")
        .column("mrn", "mrn")
        .subject_column("patient");
    let (r, out, _) = run(&v, &columns, PATIENTS.as_bytes());
    assert_eq!(r.expect("tokenize").cells, 6);
    let (_, rows_in) = parse(PATIENTS.as_bytes());
    let (_, rows_out) = parse(&out);
    for (a, b) in rows_in.iter().zip(&rows_out) {
        assert_eq!(a[3], b[3], "the subject column itself is copied");
        for (col, field) in [(2, "dob"), (0, "mrn")] {
            if a[col].is_empty() {
                assert!(b[col].is_empty());
                continue;
            }
            let back = v
                .owner()
                .detokenize_for_subject(field, &b[col], &a[3], View::Plaintext)
                .expect("detokenize for subject");
            assert_eq!(*back, a[col]);
        }
    }
    // Without the subject column, a subject-bound field is refused.
    let no_subject = CsvColumns::new().column("dob", "dob");
    let (r, _, _) = run(&v, &no_subject, PATIENTS.as_bytes());
    assert!(matches!(r, Err(Error::SubjectRequired { .. })), "{r:?}");
}

#[test]
fn quoted_fields_with_commas_newlines_and_quotes() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let input = "id,note,mrn\r\n\
        1,\"line one\nline two, with a comma\",\"MRN \"\"7\"\", ward 3\nbed 2\"\r\n\
        2,\"\"\"quoted\"\"\",plain\r\n";
    let columns = CsvColumns::new().column("mrn", "mrn");
    let (r, out, _) = run(&v, &columns, input.as_bytes());
    assert_eq!(r.expect("tokenize").rows, 2);
    let (h_in, rows_in) = parse(input.as_bytes());
    let (h_out, rows_out) = parse(&out);
    assert_eq!(h_in, h_out);
    assert_eq!(rows_in[0][2], "MRN \"7\", ward 3\nbed 2");
    for (a, b) in rows_in.iter().zip(&rows_out) {
        assert_eq!(a[..2], b[..2], "quoted cells copied exactly");
        let back = v
            .owner()
            .detokenize("mrn", &b[2], View::Plaintext)
            .expect("detokenize");
        assert_eq!(*back, a[2]);
    }
}

#[test]
fn batches_stream_and_report_progress() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let mut input = String::from("mrn,n\n");
    for i in 0..7 {
        input.push_str(&format!("MRN{:04},{i}\n", i % 3));
    }
    let columns = CsvColumns::new().column("mrn", "mrn").batch_rows(3);
    let (r, out, progress) = run(&v, &columns, input.as_bytes());
    assert_eq!(r.expect("tokenize").rows, 7);
    assert_eq!(
        progress.iter().map(|p| p.rows).collect::<Vec<_>>(),
        [3, 6, 7]
    );
    assert!(progress.windows(2).all(|w| w[0].bytes < w[1].bytes));
    let (_, rows) = parse(&out);
    // Consistent across batches: rows 0, 3 and 6 hold MRN0000.
    assert_eq!(rows[0][0], rows[3][0]);
    assert_eq!(rows[0][0], rows[6][0]);
    assert_ne!(rows[0][0], rows[1][0]);
    // Exactly one batch's worth: no empty report at the end.
    let six = CsvColumns::new().column("mrn", "mrn").batch_rows(2);
    let head: String = input.lines().take(7).map(|l| format!("{l}\n")).collect();
    let (_, _, progress) = run(&v, &six, head.as_bytes());
    assert_eq!(
        progress.iter().map(|p| p.rows).collect::<Vec<_>>(),
        [2, 4, 6]
    );
}

#[test]
fn missing_columns_are_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let (r, out, _) = run(
        &v,
        &CsvColumns::new().column("ssn", "ssn").column("nope", "ssn"),
        PATIENTS.as_bytes(),
    );
    match r {
        Err(e @ Error::CsvColumnMissing { .. }) => {
            assert_eq!(e.to_string(), "column 'nope' is not in the CSV header");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        out.is_empty(),
        "nothing written before the header is checked"
    );
    let (r, _, _) = run(
        &v,
        &CsvColumns::new()
            .column("ssn", "ssn")
            .subject_column("person"),
        PATIENTS.as_bytes(),
    );
    let e = r.expect_err("missing subject column");
    assert!(matches!(e, Error::CsvColumnMissing { subject: true, .. }));
    assert_eq!(
        e.to_string(),
        "subject column 'person' is not in the CSV header"
    );
    // No columns at all, or one twice.
    let (r, _, _) = run(&v, &CsvColumns::new(), PATIENTS.as_bytes());
    assert!(matches!(r, Err(Error::InvalidInput { .. })));
    let (r, _, _) = run(
        &v,
        &CsvColumns::new().column("ssn", "ssn").column("ssn", "mrn"),
        PATIENTS.as_bytes(),
    );
    assert!(matches!(r, Err(Error::InvalidInput { .. })));
}

#[test]
fn ragged_rows_name_their_row() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let columns = CsvColumns::new().column("ssn", "ssn");
    let cases: &[(&str, u64, u64, u64)] = &[
        ("ssn,x\n900-12-3456,1\n900-12-3457\n", 3, 2, 1),
        ("ssn,x\n900-12-3456,1,2\n", 2, 2, 3),
        // A quoted line break does not shift the row number.
        (
            "ssn,x\n900-12-3456,\"a\nb\"\n900-12-3458,1\n900-12-3459\n",
            4,
            2,
            1,
        ),
    ];
    for &(input, row, expected, found) in cases {
        let (r, _, _) = run(&v, &columns, input.as_bytes());
        let e = r.expect_err("ragged");
        assert!(
            matches!(
                e,
                Error::Csv { row: r, kind: CsvErrorKind::UnequalLengths { expected: x, found: f } }
                    if r == row && x == expected && f == found
            ),
            "{input:?}: {e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("CSV row {row}: row has {found} fields, header has {expected}")
        );
    }
}

#[test]
fn empty_and_header_only_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let columns = CsvColumns::new().column("ssn", "ssn");
    let (r, out, progress) = run(&v, &columns, b"");
    assert!(
        matches!(r, Err(Error::CsvColumnMissing { ref column, .. }) if column == "ssn"),
        "{r:?}"
    );
    assert!(out.is_empty() && progress.is_empty());
    for header in ["ssn,name\n", "ssn,name", "ssn,name\r\n\r\n\n"] {
        let (r, out, progress) = run(&v, &columns, header.as_bytes());
        let report = r.expect("header only");
        assert_eq!((report.rows, report.cells), (0, 0));
        assert_eq!(out, b"ssn,name\n");
        assert!(progress.is_empty());
    }
}

/// A value that must never appear in an error message.
const CANARY: &str = "CANARY-Quist-7f3a9";

#[test]
fn errors_never_contain_cells() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ssn = CsvColumns::new().column("ssn", "ssn");
    let mut not_utf8 = format!("ssn,name\n900-12-3456,{CANARY}\n900-12-3457,{CANARY}").into_bytes();
    not_utf8.extend_from_slice(b"\xff\xfe\n");
    let long = "9".repeat(5000);
    let cases: Vec<(Vec<u8>, CsvColumns)> = vec![
        // ragged
        (
            format!("ssn,name\n900-12-3456,{CANARY},extra\n").into_bytes(),
            ssn.clone(),
        ),
        // not UTF-8, in a row and in the header
        (not_utf8, ssn.clone()),
        (
            format!("ssn,{CANARY}")
                .into_bytes()
                .into_iter()
                .chain(*b"\xc3\x28\n1,2\n")
                .collect(),
            ssn.clone(),
        ),
        // a value the field refuses (no digits for FF1), and one too long
        (format!("ssn,name\n{CANARY},x\n").into_bytes(), ssn.clone()),
        (
            format!("ssn,name\n{long},{CANARY}\n").into_bytes(),
            ssn.clone(),
        ),
        // a date that is not a date, tied to a subject named by the canary
        (
            format!("dob,p\n{CANARY},{CANARY}\n").into_bytes(),
            CsvColumns::new().column("dob", "dob").subject_column("p"),
        ),
        // a missing column in a header full of canaries
        (format!("{CANARY},name\n1,2\n").into_bytes(), ssn.clone()),
    ];
    for (input, columns) in cases {
        let (r, _, _) = run(&v, &columns, &input);
        let e = r.expect_err("refused");
        let mut text = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            text.push_str(&s.to_string());
            src = s.source();
        }
        assert!(!text.contains("CANARY"), "{text}");
        assert!(!text.contains("Quist"), "{text}");
        assert!(!text.contains("9999"), "{text}");
    }
    // And the not-UTF-8 row is named as such.
    let (r, _, _) = run(&v, &ssn, b"ssn,name\n900-12-3456,ok\n1,\xff\n");
    assert!(
        matches!(
            r,
            Err(Error::Csv {
                row: 3,
                kind: CsvErrorKind::NotUtf8
            })
        ),
        "{r:?}"
    );
}

#[test]
fn policy_errors_come_back_as_they_are() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let stranger = v.session(Caller::new("stranger", "research"));
    let mut out = Vec::new();
    let r = tokenize_csv(
        &stranger,
        &CsvColumns::new().column("ssn", "ssn"),
        PATIENTS.as_bytes(),
        &mut out,
        &mut |_| {},
    );
    assert!(matches!(r, Err(Error::AccessDenied { .. })), "{r:?}");
}
