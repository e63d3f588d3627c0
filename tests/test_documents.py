"""Document dumps: formats, token tables, rejects with reasons, file-level errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
from pathlib import Path

import dask
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nerbatch.documents import (
    DOCUMENT_COLUMNS,
    REJECT_COLUMNS,
    DocumentInputError,
    DocumentOptions,
    RejectReason,
    fingerprint_inputs,
    plan_documents,
    read_documents,
    read_part,
    split_rejects,
)
from nerbatch.tables import DOCUMENT_REJECT_SCHEMA
from nerbatch.tokenize import Tokenizer, document_sentences, pretokenized_sentences


@pytest.fixture(autouse=True)
def synchronous_dask(request: pytest.FixtureRequest):
    if "dask_client_fixture" in request.fixturenames:  # that test runs on real workers
        yield
        return
    with dask.config.set(scheduler="sync"):
        yield


def read_all(paths, options: DocumentOptions | None = None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    documents, rejects = split_rejects(read_documents(paths, options, **kwargs))
    return documents.compute(), rejects.compute()


def by_id(frame: pd.DataFrame) -> dict[str, tuple]:
    return {r.doc_id: (r.text, r.row) for r in frame.itertuples()}


def reasons(rejects: pd.DataFrame) -> list[tuple[int, str]]:
    return sorted(zip(rejects["row"], rejects["reason"], strict=True))


# -- CSV ---------------------------------------------------------------------------


def test_csv_rows_lines_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    path.write_bytes(
        b"doc_id,text\n"
        b"a,Hello world.\n"
        b'b,"A quoted\nmulti-line text, with a comma."\n'
        b"c,caf\xe9 is latin-1 here\n"  # invalid UTF-8: rejected alone
        b"\n"
        b"d,Caf\xc3\xa9 is fine.\n"
        b"e,too,many,fields\n"
        b"NA,null\n"  # 'NA' and 'null' are real strings, not missing values
    )
    documents, rejects = read_all(path)
    assert documents["sentences"].isna().all()  # raw text: no upstream tokens
    assert [len(document_sentences(r.text, r.sentences, Tokenizer())) for r in documents.itertuples()] == [1, 1, 1, 1]
    assert by_id(documents) == {
        "a": ("Hello world.", 2),
        "b": ("A quoted\nmulti-line text, with a comma.", 3),
        "d": ("Café is fine.", 7),
        "NA": ("null", 9),
    }
    assert reasons(rejects) == [(5, "invalid_utf8"), (8, "malformed_row")]
    bad = rejects.set_index("row")
    assert bad.loc[5, "text"] == "c,caf\\xe9 is latin-1 here"
    assert "0xE9" in bad.loc[5, "detail"] and "'text'" in bad.loc[5, "detail"]
    assert bad.loc[8, "detail"] == "expected 2 fields, found 4"
    assert set(documents["source_file"]) == {str(path)}


def test_invalid_bytes_in_an_unused_column_do_not_reject(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_bytes(b"note,doc_id,text\n\xff\xfe,x,Some text.\n")
    documents, rejects = read_all(path)
    assert by_id(documents) == {"x": ("Some text.", 2)} and rejects.empty


def test_csv_with_bom_custom_columns_and_a_huge_field(tmp_path: Path) -> None:
    big = "word " * 1_000_000  # 5 MB, above the csv module's default field limit
    path = tmp_path / "custom.csv"
    path.write_text("\ufeffid;body\n1;" + big + "\n2;short\n", encoding="utf-8")
    options = DocumentOptions(id_column="id", text_column="body", csv_delimiter=";")
    documents, rejects = read_all(path, options)
    assert rejects.empty
    assert documents["doc_id"].tolist() == ["1", "2"]
    assert len(documents["text"].iloc[0]) == len(big)  # a 5 MB document is kept whole


# -- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_bad_lines_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    lines = [
        json.dumps({"doc_id": "a", "text": "First."}).encode(),
        json.dumps({"doc_id": 7, "text": "Integer id."}).encode(),
        b"{not json",
        b"[1, 2]",
        b"",
        '{"doc_id": "c", "text": "caf\xe9"}'.encode("latin-1"),
        b'{"doc_id": "d", "text": "lone \\ud800 surrogate"}',
        json.dumps({"doc_id": "e"}).encode(),
        json.dumps({"doc_id": None, "text": "no id"}).encode(),
        json.dumps({"doc_id": "f", "text": 3.5}).encode(),
        json.dumps({"doc_id": ["x"], "text": "list id"}).encode(),
        json.dumps({"doc_id": "g", "text": "\u00a0\n "}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    documents, rejects = read_all(path)
    assert by_id(documents) == {"a": ("First.", 1), "7": ("Integer id.", 2)}
    assert reasons(rejects) == [
        (3, "malformed_row"),
        (4, "malformed_row"),
        (6, "invalid_utf8"),
        (7, "invalid_utf8"),
        (8, "empty_text"),
        (9, "null_id"),
        (10, "malformed_row"),
        (11, "malformed_row"),
        (12, "empty_text"),
    ]
    bad = rejects.set_index("row")
    assert bad.loc[7, "text"] == '{"doc_id": "d", "text": "lone \\ud800 surrogate"}'
    assert "U+D800" in bad.loc[7, "detail"]
    # Every reject can be written with the rejects schema (no lone surrogates left).
    pa.Table.from_pandas(rejects[REJECT_COLUMNS], schema=DOCUMENT_REJECT_SCHEMA, preserve_index=False)


def test_jsonl_missing_text_column_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "notext.jsonl"
    path.write_text(json.dumps({"doc_id": "a", "body": "x"}) + "\n")
    with pytest.raises(DocumentInputError, match=r"notext\.jsonl: missing required column 'text'"):
        read_all(path)


def test_jsonl_that_is_not_json_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl"
    path.write_text("doc_id,text\na,b\n")
    with pytest.raises(DocumentInputError, match="no line is a JSON object"):
        read_all(path)


# -- Parquet -----------------------------------------------------------------------------


def test_parquet_row_groups_are_partitions_with_file_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "docs.parquet"
    table = pa.table(
        {
            "doc_id": pa.array([1, 2, 3, None, 5], pa.int64()),
            "text": ["one", "two", None, "four", "five"],
            "extra": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    parts = plan_documents(path, DocumentOptions())
    assert [(p.row_group, p.first_row) for p in parts] == [(0, 1), (1, 3), (2, 5)]
    frame = read_documents(path)
    assert frame.npartitions == 3
    documents, rejects = read_all(path)
    assert by_id(documents) == {"1": ("one", 1), "2": ("two", 2), "5": ("five", 5)}
    assert reasons(rejects) == [(3, "empty_text"), (4, "null_id")]


def test_parquet_strings_with_invalid_utf8_are_rejected_per_row(tmp_path: Path) -> None:
    path = tmp_path / "binary.parquet"
    table = pa.table({"doc_id": ["a", "b"], "text": pa.array([b"fine", b"bad \xff"], pa.binary())})
    pq.write_table(table, path)
    documents, rejects = read_all(path)
    assert by_id(documents) == {"a": ("fine", 1)}
    assert reasons(rejects) == [(2, "invalid_utf8")]
    assert "\\xff" in rejects["text"].iloc[0]


# -- token tables --------------------------------------------------------------------------


def test_token_table_becomes_pretokenised_documents(tmp_path: Path) -> None:
    path = tmp_path / "tokens.parquet"
    table = pa.table(
        {
            "doc_id": ["d1", "d1", "d1", "d1", "d1", "d2", "d3", "d3"],
            "sentence_id": ["s2", "s1", "s1", "s1", "s2", "x", "y", "y"],
            "token_index": pa.array([0, 2, 0, 1, 1, 0, 0, 0], pa.int32()),
            "word": ["Yes", ".", "New York", "rocks", "!", "Solo", "dup", "dup"],
        }
    )
    pq.write_table(table, path, row_group_size=3)  # documents span row groups
    assert len(plan_documents(path, DocumentOptions())) == 1
    documents, rejects = read_all(path)
    d1 = documents.set_index("doc_id").loc["d1"]
    assert d1["sentences"] == [["Yes", "!"], ["New York", "rocks", "."]]
    assert d1["text"] == "Yes ! New York rocks ."
    assert d1["row"] == 1
    for sentence in pretokenized_sentences(d1["sentences"]):
        assert [d1["text"][s:e] for s, e in zip(sentence.starts, sentence.ends)] == sentence.tokens
    assert documents.set_index("doc_id").loc["d2", "text"] == "Solo"
    tokenizer = Tokenizer()
    for row in documents.itertuples():  # what the tag step does with each row
        sentences = document_sentences(row.text, row.sentences, tokenizer)
        assert [s.tokens for s in sentences] == row.sentences
    assert reasons(rejects) == [(7, "invalid_tokens")]
    assert "repeated token_index" in rejects["detail"].iloc[0]


def test_csv_token_table_with_sentence_ids_only_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_bytes(
        b"sentence_id,token_index,word\n"
        b"s1,0,Hello\n"
        b"s1,1,world\n"
        b"s2,0,Bad\n"
        b"s2,x,index\n"
        b",0,orphan\n"
        b"s3,0,caf\xe9\n"
        b"s4,0,\n"
    )
    documents, rejects = read_all(path)
    assert by_id(documents) == {"s1": ("Hello world", 2)}
    assert documents["sentences"].tolist() == [[["Hello", "world"]]]
    assert reasons(rejects) == [
        (4, "invalid_tokens"),
        (6, "null_id"),
        (7, "invalid_tokens"),  # the document of the bad row is set aside too
        (7, "invalid_utf8"),
        (8, "invalid_tokens"),
    ]
    details = dict(zip(rejects["doc_id"], rejects["detail"]))
    assert details["s2"] == "row 5: token_index is not an integer"


def test_token_table_missing_word_column_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("sentence_id,token_index,token\ns,0,a\n")
    for layout in ("auto", "tokens"):
        with pytest.raises(DocumentInputError, match=r"tokens\.csv: missing required column 'word'"):
            read_documents(path, DocumentOptions(layout=layout))


# -- duplicates, size cap ---------------------------------------------------------------------


def test_duplicate_ids_keep_the_first_in_input_order_across_files(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("doc_id,text\nx,second file\ny,only here\nx,again\n")
    (tmp_path / "a.csv").write_text("doc_id,text\nz,first\nx,first file\n")
    pq.write_table(pa.table({"doc_id": ["z", "w"], "text": ["third", "new"]}), tmp_path / "c.parquet")
    paths = [str(tmp_path / "*.csv"), str(tmp_path / "c.parquet")]
    documents, rejects = read_all(paths)
    assert by_id(documents) == {"z": ("first", 2), "x": ("first file", 3), "y": ("only here", 3), "w": ("new", 2)}
    names = rejects["source_file"].map(lambda p: Path(p).name)
    got = sorted(zip(names, rejects["row"], rejects["reason"], rejects["detail"], strict=True))
    a = tmp_path / "a.csv"
    assert got == [
        ("b.csv", 2, "duplicate_id", f"duplicate of the document at {a} row 3"),
        ("b.csv", 4, "duplicate_id", f"duplicate of the document at {a} row 3"),
        ("c.parquet", 1, "duplicate_id", f"duplicate of the document at {a} row 2"),
    ]
    # Partition-level only: the cross-file duplicates survive.
    documents, _ = read_all(paths, dedupe="partition")
    assert sorted(documents["doc_id"]) == ["w", "x", "x", "y", "z", "z"]


def test_the_same_file_twice_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("doc_id,text\nx,text\n")
    documents, rejects = read_all([str(path), str(tmp_path / "*.csv")])
    assert len(documents) == 1 and rejects.empty


def test_size_cap_rejects_only_when_set(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = [json.dumps({"doc_id": "big", "text": "x" * 101}), json.dumps({"doc_id": "ok", "text": "fine"})]
    path.write_text("\n".join(lines) + "\n")
    documents, rejects = read_all(path)
    assert len(documents) == 2 and rejects.empty
    documents, rejects = read_all(path, DocumentOptions(max_text_chars=100))
    assert documents["doc_id"].tolist() == ["ok"]
    assert reasons(rejects) == [(1, "too_long")]
    assert rejects["detail"].iloc[0] == "101 characters, more than the cap of 100"
    assert rejects["text"].iloc[0] == "x" * 101  # kept aside, not lost


# -- file-level errors ---------------------------------------------------------------------------


def test_missing_column_is_a_clean_error_naming_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("id,text\n1,a\n")
    with pytest.raises(DocumentInputError) as info:
        read_documents(path)
    assert str(info.value) == f"{path}: missing required column 'doc_id' (columns: id, text)"
    # No chained library exception: the message is the whole story.
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    parquet = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"doc_id": ["a"], "body": ["b"]}), parquet)
    with pytest.raises(DocumentInputError, match=r"docs\.parquet: missing required column 'text'"):
        read_documents(parquet)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("empty.jsonl", b"", "file is empty"),
        ("broken.parquet", b"not parquet at all", "not a readable Parquet file"),
        ("notes.txt", b"doc_id,text\n", "cannot tell the format"),
    ],
)
def test_unusable_files_are_clean_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentInputError, match=message) as info:
        read_documents(path)
    assert str(info.value).startswith(str(path))


def test_a_file_truncated_after_its_header_is_a_clean_error(tmp_path: Path) -> None:
    data = b"doc_id,text\n" + b"".join(b"d%d,text number %d\n" % (i, i) for i in range(20_000))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(data)[:30_000])  # the header reads fine, the rest does not
    with pytest.raises(DocumentInputError, match=r"cut\.csv\.gz: cannot be read \(EOFError"):
        read_all(path)


def test_missing_files_and_empty_globs_are_clean_errors(tmp_path: Path) -> None:
    with pytest.raises(DocumentInputError, match="file not found"):
        read_documents(tmp_path / "absent.csv")
    with pytest.raises(DocumentInputError, match="no file matches"):
        read_documents(str(tmp_path / "*.parquet"))


def test_header_only_csv_gives_no_documents(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("doc_id,text\n")
    documents, rejects = read_all(path)
    assert documents.empty and rejects.empty
    assert list(documents.columns) == DOCUMENT_COLUMNS


def test_error_survives_pickling_for_dask_workers() -> None:
    error = DocumentInputError("s3://bucket/a.csv", "file is empty", 3)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is DocumentInputError
    assert (str(copy), copy.path, copy.line) == (str(error), error.path, 3)


# -- fsspec, frames, fingerprints ---------------------------------------------------------------


def test_fsspec_urls_and_compressed_files(tmp_path: Path) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/nerbatch-test/docs.jsonl", b'{"doc_id": "m", "text": "In memory."}\n')
    with fsspec.open(str(tmp_path / "docs.csv.gz"), "wb", compression="gzip") as f:
        f.write(b"doc_id,text\ng,Gzipped.\n")
    try:
        documents, _ = read_all(["memory://nerbatch-test/*.jsonl", str(tmp_path / "docs.csv.gz")])
        assert by_id(documents) == {"m": ("In memory.", 1), "g": ("Gzipped.", 2)}
        assert "memory:///nerbatch-test/docs.jsonl" in set(documents["source_file"])
    finally:
        memory.rm("/nerbatch-test", recursive=True)


def test_read_part_and_split_rejects_on_pandas(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("doc_id,text\na,x\na,y\n,z\n")
    (part,) = plan_documents(path, DocumentOptions())
    frame = read_part(part, DocumentOptions())
    assert frame.dtypes.to_dict() == read_documents(path).dtypes.to_dict()
    documents, rejects = split_rejects(frame)
    assert list(documents.columns) == DOCUMENT_COLUMNS and list(rejects.columns) == REJECT_COLUMNS
    assert documents["doc_id"].tolist() == ["a"]
    assert list(zip(rejects["row"], rejects["reason"])) == [(3, RejectReason.DUPLICATE_ID.value), (4, "null_id")]
    table = pa.Table.from_pandas(rejects, schema=DOCUMENT_REJECT_SCHEMA, preserve_index=False)
    assert table.column("doc_id").to_pylist() == ["a", None]


def test_fingerprints_stream_sha256_and_sizes(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 10_000  # 2.5 MB: several hash blocks
    (tmp_path / "b.csv").write_bytes(payload)
    (tmp_path / "a.csv").write_bytes(b"doc_id,text\n")
    files = fingerprint_inputs(str(tmp_path / "*.csv"))
    assert [(Path(f.path).name, f.size) for f in files] == [("a.csv", 12), ("b.csv", len(payload))]
    assert files[1].sha256 == hashlib.sha256(payload).hexdigest()
    assert files[0].sha256 == hashlib.sha256(b"doc_id,text\n").hexdigest()
    with pytest.raises(DocumentInputError, match="file not found"):
        fingerprint_inputs(tmp_path / "absent.csv")


def test_on_a_cluster_with_worker_processes(tmp_path: Path, dask_client_fixture) -> None:
    (tmp_path / "a.csv").write_bytes(b"doc_id,text\nx,one\ny,caf\xe9\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"doc_id": "x", "text": "again"}) + "\n")
    documents, rejects = read_all([str(tmp_path / "a.csv"), str(tmp_path / "b.jsonl")])
    assert by_id(documents) == {"x": ("one", 2)}
    assert sorted(rejects["reason"]) == ["duplicate_id", "invalid_utf8"]
    # A file-level error found on a worker reaches the client intact.
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "z", "text": "t"}) + "\n")
    with pytest.raises(DocumentInputError, match=r"c\.jsonl: missing required column 'doc_id'"):
        read_all(str(tmp_path / "c.jsonl"))
