"""Readers on fixtures written here: every token comes out once, either kept
or rejected with its file and line, whatever the partitioning."""

from __future__ import annotations

from pathlib import Path

import dask
import pandas as pd
import pytest

from nerbatch.corpus.layouts import CorpusFormat, detect_format
from nerbatch.corpus.readers import read_corpus
from nerbatch.errors import InputError

GMB_HEADER = "Sentence #,Word,POS,Tag\n"


def gmb_lines(n_sentences: int, *, start: int = 1, long_every: int = 0) -> list[str]:
    """GMB-layout rows: the sentence column filled only on the first token."""
    rows = []
    for s in range(start, start + n_sentences):
        n_tokens = 40 if long_every and s % long_every == 0 else 3 + s % 5
        for t in range(n_tokens):
            marker = f"Sentence: {s}" if t == 0 else ""
            word, tag = (f"Paris{s}", "B-geo") if t == 1 else (f"w{s}_{t}", "O")
            rows.append(f"{marker},{word},NN,{tag}\n")
    return rows


def write(path: Path, text: str | bytes, encoding: str = "latin-1") -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def compute_rows(read) -> pd.DataFrame:
    with dask.config.set(scheduler="sync"):
        return read.rows.compute().reset_index(drop=True)


def test_gmb_forward_fill_is_independent_of_blocksize(tmp_path):
    path = write(tmp_path / "ner_dataset.csv", GMB_HEADER + "".join(gmb_lines(60, long_every=7)))
    whole = compute_rows(read_corpus(str(path), blocksize=None))
    assert whole["reason"].isna().all()
    assert whole["sentence_id"].nunique() == 60
    for blocksize in (64, 200, 1000):  # many partitions start mid-sentence; 40-token sentences span several blocks
        read = read_corpus(str(path), blocksize=blocksize)
        assert read.rows.npartitions > 3
        pd.testing.assert_frame_equal(compute_rows(read), whole)


def test_every_partition_holds_whole_sentences(tmp_path):
    path = write(tmp_path / "ner_dataset.csv", GMB_HEADER + "".join(gmb_lines(30, long_every=4)))
    read = read_corpus(str(path), blocksize=100)
    with dask.config.set(scheduler="sync"):
        parts = [p.compute() for p in read.rows.to_delayed()]
    ids_per_part = [set(p["sentence_id"]) for p in parts if len(p)]
    for a, b in zip(ids_per_part, ids_per_part[1:]):
        assert not a & b
    assert all(p["token_index"].iat[0] == 0 for p in parts if len(p))


def test_gmb_keeps_words_that_look_like_missing_values_and_decodes_latin1(tmp_path):
    body = (
        "Sentence: 1,None,NN,O\n,NA,NN,O\n,null,NN,O\n,nan,NN,O\n,\",\",\",\",O\n"
        "Sentence: 2,caf\xe9,NN,B-org\n,M\xfcnchen,NNP,I-org\n"
    )
    path = write(tmp_path / "gmb.csv", GMB_HEADER + body)
    rows = compute_rows(read_corpus(str(path)))
    assert rows["word"].tolist() == ["None", "NA", "null", "nan", ",", "café", "München"]
    assert rows["reason"].isna().all()
    assert rows["line"].tolist() == list(range(2, 9))
    assert rows["token_index"].tolist() == [0, 1, 2, 3, 4, 0, 1]


def test_tutorial_layout_with_junk_columns(tmp_path):
    header = ",pos,sentence_idx,,word,tag" + "," * 14 + "\n"
    lines = []
    for i, (s, w, t) in enumerate([(1, "Thousands", "O"), (1, "London", "B-geo"), (2, "Iraq", "B-geo"), (2, "war", "O")]):
        lines.append(f"{i},NN,{s},,{w},{t}" + "," * 14 + "\r\n")
    path = write(tmp_path / "ner.csv", header + "".join(lines))
    assert detect_format(str(path)) is CorpusFormat.TUTORIAL
    read = read_corpus(str(path))
    rows = compute_rows(read)
    assert read.notes == ["ner.csv: format tutorial (detected)"]
    assert rows["sentence_id"].tolist() == ["ner.csv#1", "ner.csv#1", "ner.csv#2", "ner.csv#2"]
    assert rows["word"].tolist() == ["Thousands", "London", "Iraq", "war"]


def test_broken_lines_reject_their_whole_sentence_with_file_and_line(tmp_path):
    body = (
        "Sentence: 1,a,NN,O\n,b,NN,B-geo\n"  # lines 2-3: fine
        "Sentence: 2,c,NN,O\n,d,NN,O,EXTRA\n,e,NN,O\n"  # line 5: too many fields
        "Sentence: 3,f,NN,O\n,,NN,O\n"  # line 8: empty word
        "Sentence: 4,g,NN,B_geo\n"  # line 9: invalid tag
        'Sentence: 5,"h,NN,O\n,i,NN,O\n'  # line 10: bad quoting (unterminated quote)
        "Sentence: 6,j,NN,I-per\n"  # line 12: fine (IOB1 I- is valid)
    )
    path = write(tmp_path / "broken.csv", GMB_HEADER + body)
    for blocksize in (None, 30):
        rows = compute_rows(read_corpus(str(path), blocksize=blocksize))
        n_lines = body.count("\n")
        assert len(rows) == n_lines  # every line is a token row, kept or rejected
        kept = rows[rows["reason"].isna()]
        assert kept["word"].tolist() == ["a", "b", "j"]
        rejects = rows[rows["reason"].notna()].set_index("line")
        assert rejects.loc[5, "reason"] == "expected 4 fields, found 5"
        assert rejects.loc[4, "reason"] == "in a sentence with a rejected line (line 5)"
        assert rejects.loc[8, "reason"] == "empty word"
        assert rejects.loc[9, "reason"] == "invalid tag 'B_geo'"
        assert rejects.loc[10, "reason"].startswith("malformed CSV line, bad quoting")
        # An unparseable line cannot open a sentence, so line 11 joins sentence 4 (bad since line 9).
        assert rejects.loc[11, "reason"] == "in a sentence with a rejected line (line 9)"
        assert (rejects["source_file"] == "broken.csv").all()


def test_undecodable_line_in_utf8_csv_is_rejected_alone(tmp_path):
    data = (b"sent,word,tag\n1,ok,O\n1,fine,O\n2," + b"caf\xe9" + b",O\n3,good,B-per\n")
    path = write(tmp_path / "tokens.csv", data)
    rows = compute_rows(
        read_corpus(str(path), fmt="csv", sentence_column="sent", word_column="word", tag_column="tag")
    )
    bad = rows[rows["reason"].notna()]
    assert bad["line"].tolist() == [4]
    assert bad["reason"].iat[0].startswith("not valid utf-8")
    assert rows[rows["reason"].isna()]["word"].tolist() == ["ok", "fine", "good"]


def test_a_nul_byte_in_a_word_rejects_the_line_and_its_sentence(tmp_path):
    path = write(tmp_path / "g.csv", GMB_HEADER + "Sentence: 1,ab\x00c,NN,O\n,d,NN,O\nSentence: 2,e,NN,B-geo\n,f,NN,B-\x00\n"
                 "Sentence: 3,g,NN,O\n")
    for blocksize in (None, 40):
        rows = compute_rows(read_corpus(str(path), blocksize=blocksize)).set_index("line")
        assert rows.loc[2, "reason"] == "NUL character in the word or tag"
        assert rows.loc[3, "reason"] == "in a sentence with a rejected line (line 2)"
        assert rows.loc[5, "reason"] == "NUL character in the word or tag"
        assert rows[rows["reason"].isna()]["word"].tolist() == ["g"]


def test_tokens_before_the_first_marker_are_rejected(tmp_path):
    path = write(tmp_path / "g.csv", GMB_HEADER + ",orphan,NN,O\nSentence: 1,a,NN,O\n")
    rows = compute_rows(read_corpus(str(path)))
    assert rows.set_index("line").loc[2, "reason"] == "line before the first sentence marker"
    assert rows["reason"].isna().sum() == 1


def test_sentence_ids_are_unique_across_files_with_clashing_numbers(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write(tmp_path / "a" / "part.csv", GMB_HEADER + "".join(gmb_lines(5)))
    b = write(tmp_path / "b" / "part.csv", GMB_HEADER + "".join(gmb_lines(5)))
    rows = compute_rows(read_corpus([str(a), str(b)]))
    sentences = rows.drop_duplicates("sentence_id")
    assert len(sentences) == 10
    assert set(sentences["sentence_id"].str.split("#").str[0]) == {"a/part.csv", "b/part.csv"}


def test_glob_input_reads_every_file_in_order(tmp_path):
    for i in range(3):
        write(tmp_path / f"p{i}.csv", GMB_HEADER + "".join(gmb_lines(4, start=1)))
    rows = compute_rows(read_corpus(str(tmp_path / "p*.csv")))
    assert rows["source_file"].unique().tolist() == ["p0.csv", "p1.csv", "p2.csv"]
    assert rows["sentence_id"].nunique() == 12


def test_conll_with_docstart_and_tag_column(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n\n"
        "-DOCSTART- -X- -X- O\n\n"
        "BRUSSELS NNP B-NP B-LOC\n"
    )
    path = write(tmp_path / "train.conll", text, "utf-8")
    assert detect_format(str(path)) is CorpusFormat.CONLL
    for blocksize in (None, 20):
        rows = compute_rows(read_corpus(str(path), blocksize=blocksize))
        assert rows["reason"].isna().all()
        groups = rows.groupby("sentence_id", sort=False)["word"].apply(list).tolist()
        assert groups == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
        assert rows["tag"].tolist() == ["B-ORG", "O", "B-MISC", "B-PER", "I-PER", "B-LOC"]
        assert rows["sentence_id"].iat[0] == "train.conll#L3"
    chunk_tags = compute_rows(read_corpus(str(path), conll_tag_column=2))["tag"].tolist()
    assert chunk_tags[:3] == ["B-NP", "B-VP", "B-NP"]


def test_parquet_token_table_with_column_mapping(tmp_path):
    frame = pd.DataFrame({"sid": ["s1", "s1", "s2"], "token": ["Angela", "Merkel", "spoke"], "label": ["B-PER", "I-PER", "O"]})
    path = tmp_path / "tokens.parquet"
    frame.to_parquet(path)
    rows = compute_rows(read_corpus(str(path), sentence_column="sid", word_column="token", tag_column="label"))
    assert rows["sentence_id"].tolist() == ["tokens.parquet#s1", "tokens.parquet#s1", "tokens.parquet#s2"]
    assert rows["token_index"].tolist() == [0, 1, 0]


def test_auto_format_reads_parquet_and_gmb_files_together(tmp_path):
    frame = pd.DataFrame({"sentence_id": ["s1", "s1"], "word": ["Angela", "Merkel"], "tag": ["B-PER", "I-PER"]})
    frame.to_parquet(tmp_path / "a.parquet")
    gmb = write(tmp_path / "b.csv", GMB_HEADER + "".join(gmb_lines(2)))
    read = read_corpus([str(tmp_path / "a.parquet"), str(gmb)])
    assert [f.format for f in read.files] == [CorpusFormat.PARQUET, CorpusFormat.GMB]
    rows = compute_rows(read)
    assert rows["reason"].isna().all()
    assert rows.drop_duplicates("sentence_id")["sentence_id"].str.split("#").str[0].tolist() == ["a.parquet", "b.csv", "b.csv"]


def test_adding_a_file_keeps_the_sentence_ids_of_the_others(tmp_path):
    (tmp_path / "x" / "y").mkdir(parents=True)
    first = write(tmp_path / "x" / "y" / "ner_dataset.csv", GMB_HEADER + "".join(gmb_lines(3)))
    other = write(tmp_path / "extra.csv", GMB_HEADER + "".join(gmb_lines(2)))
    alone = compute_rows(read_corpus(str(first)))["sentence_id"].unique().tolist()
    together = compute_rows(read_corpus([str(first), str(other)]))["sentence_id"].unique().tolist()
    assert together[: len(alone)] == alone == ["ner_dataset.csv#Sentence: 1", "ner_dataset.csv#Sentence: 2", "ner_dataset.csv#Sentence: 3"]


def test_a_corrupt_parquet_file_is_one_clear_error(tmp_path):
    path = write(tmp_path / "tokens.parquet", b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"tokens\.parquet: not a readable Parquet file"):
        compute_rows(read_corpus(str(path)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: write(p, ""), "file is empty"),
        (lambda p: write(p, GMB_HEADER), "file has a header but no token lines"),
        (lambda p: write(p, GMB_HEADER.rstrip("\n")), "file has a header but no token lines"),
        (lambda p: write(p, GMB_HEADER + "\n \r\n\n"), "file has a header but no token lines"),
        (lambda p: write(p, "Sentence #,Word,POS\nSentence: 1,a,NN\n"), "cannot tell the format"),
        (lambda p: p, "file not found"),
    ],
)
def test_unusable_files_give_one_clear_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.csv"
    make(path)
    with pytest.raises(InputError) as info:
        read_corpus(str(path))
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_mapped_column_names_file_and_column(tmp_path):
    path = write(tmp_path / "t.csv", "sent,word\n1,a\n")
    with pytest.raises(InputError, match=r"t\.csv:1: missing required column 'tag'"):
        read_corpus(str(path), fmt="csv", sentence_column="sent", word_column="word", tag_column="tag")


@pytest.mark.parametrize("tag_column", [-1, 2, 3])
@pytest.mark.parametrize("at_start", [True, False])
def test_vectorised_conll_parser_agrees_with_the_line_by_line_one(tag_column, at_start):
    from nerbatch.corpus.layouts import ConllLayout
    from nerbatch.corpus.lines import _parse_conll_by_line, parse_conll_lines

    data = (
        "cont NN O\n\n-DOCSTART- -X- O\n \t \nEU\tNNP  B-ORG\r\nrejects VBZ O\nlonely\n"
        "Gen\u00e8ve NNP B-LOC extra\n\u00a0\n\nPeter NNP B-PER\nBlackburn NNP\tI-PER"
    ).encode("utf-8")
    layout = ConllLayout(tag_column=tag_column)
    fast = parse_conll_lines(data, 5, at_start, layout)
    exact = _parse_conll_by_line(data, 5, at_start, layout)
    assert fast.frame.to_pylist() == exact.frame.to_pylist()
    assert (fast.n_lines, fast.n_blank) == (exact.n_lines, exact.n_blank) == (12, 5)
    assert fast.frame.column("reason").null_count < fast.frame.num_rows  # the fixture has bad lines


def test_conll_line_with_undecodable_bytes_rejects_only_its_sentence(tmp_path):
    path = write(tmp_path / "bad.conll", b"Peter NNP B-PER\nM\xfcller NNP I-PER\n\nEU NNP B-ORG\nrejects VBZ O\n")
    rows = compute_rows(read_corpus(str(path), fmt="conll"))
    kept = rows[rows["reason"].isna()]
    assert kept["word"].tolist() == ["EU", "rejects"]
    bad = rows[rows["reason"].notna()].set_index("line")["reason"].to_dict()
    assert bad == {1: "in a sentence with a rejected line (line 2)", 2: "not valid utf-8 (byte 2)"}


def test_a_parquet_file_without_rows_is_as_good_as_empty(tmp_path):
    path = tmp_path / "tokens.parquet"
    pd.DataFrame({"sentence_id": pd.Series([], dtype=str), "word": pd.Series([], dtype=str),
                  "tag": pd.Series([], dtype=str)}).to_parquet(path)
    with pytest.raises(InputError, match=r"tokens\.parquet: Parquet file has no rows"):
        compute_rows(read_corpus(str(path)))


@pytest.mark.parametrize(
    "python_encoding, option, message",
    [
        ("utf-16", "utf-16", r"(encoding utf-16 is not supported|file is UTF-16).*convert .* to UTF-8 first"),
        ("utf-16-le", "utf-16-le", r"encoding utf-16-le is not supported .*; convert the file to UTF-8 first"),
        ("utf-16", None, r"file is UTF-16 \(it starts with a UTF-16 byte-order mark\); convert it to UTF-8 first"),
        ("utf-32", None, "file is UTF-32"),
        ("utf-16", "latin-1", "file is UTF-16"),  # an explicit (wrong) encoding does not hide the BOM
        ("utf-8", "no-such-codec", "unknown encoding 'no-such-codec'"),
    ],
)
@pytest.mark.parametrize("fmt", ["auto", "gmb"])
def test_wide_encodings_are_refused_with_one_line(tmp_path, python_encoding, option, message, fmt):
    path = write(tmp_path / "ner_dataset.csv", GMB_HEADER + "".join(gmb_lines(3)), python_encoding)
    with pytest.raises(InputError, match=rf"ner_dataset\.csv: {message}"):
        read_corpus(str(path), fmt=fmt, encoding=option)


@pytest.mark.parametrize("encoding", [None, "utf-8", "utf-8-sig"])
def test_a_utf8_byte_order_mark_is_skipped_in_every_text_format(tmp_path, encoding):
    bom = b"\xef\xbb\xbf"
    gmb_text = GMB_HEADER + "".join(gmb_lines(30, long_every=4))
    gmb = write(tmp_path / "a.csv", bom + gmb_text.encode("utf-8"))
    plain = write(tmp_path / "plain.csv", gmb_text.encode("utf-8"))
    tutorial = write(tmp_path / "ner.csv", bom + b",sentence_idx,word,tag\n0,1,Caf\xc3\xa9,O\n1,1,Paris,B-geo\n2,2,Lima,B-geo\n")
    conll = write(tmp_path / "c.conll", bom + b"Paris NNP B-geo\nis VBZ O\n\nLima NNP B-geo\n")
    for blocksize in (None, 100):
        rows = compute_rows(read_corpus(str(gmb), encoding=encoding, blocksize=blocksize))
        expected = compute_rows(read_corpus(str(plain), encoding=encoding, blocksize=blocksize))
        assert rows["reason"].isna().all()
        pd.testing.assert_frame_equal(rows.drop(columns=["sentence_id", "source_file"]),
                                      expected.drop(columns=["sentence_id", "source_file"]))
    rows = compute_rows(read_corpus(str(tutorial), encoding=encoding))
    assert rows["word"].tolist() == ["Café", "Paris", "Lima"] and rows["reason"].isna().all()
    rows = compute_rows(read_corpus(str(conll), encoding=encoding))
    assert rows["word"].tolist() == ["Paris", "is", "Lima"] and rows["sentence_id"].iat[0] == "c.conll#L1"


def every_token_lines(n_sentences: int, *, long_every: int = 0) -> list[tuple[int, str, str]]:
    """``(sentence key, word, tag)`` rows where every row carries its sentence key."""
    rows = []
    for s in range(1, n_sentences + 1):
        n_tokens = 40 if long_every and s % long_every == 0 else 2 + s % 6
        rows += [(s, f"Paris{s}" if t == 1 else f"w{s}_{t}", "B-geo" if t == 1 else "O") for t in range(n_tokens)]
    return rows


@pytest.mark.parametrize("layout", ["tutorial", "csv"])
def test_every_token_layouts_are_independent_of_blocksize(tmp_path, layout):
    rows = every_token_lines(60, long_every=7)
    if layout == "tutorial":  # ner.csv: an unnamed index column, sentence_idx, word, tag, junk columns
        text = ",sentence_idx,word,pos,tag,junk\n" + "".join(
            f"{i},{s},{w},NN,{t},x\n" for i, (s, w, t) in enumerate(rows))
        options = {}
    else:  # a generic token table keyed on every row, in another column order
        text = "tag,word,sent\n" + "".join(f"{t},{w},s{s}\n" for s, w, t in rows)
        options = {"fmt": "csv", "sentence_column": "sent", "word_column": "word", "tag_column": "tag",
                   "sentence_marker": "every-token"}
    path = write(tmp_path / ("ner.csv" if layout == "tutorial" else "tokens.csv"), text)
    whole = compute_rows(read_corpus(str(path), blocksize=None, **options))
    assert whole["reason"].isna().all() and len(whole) == len(rows)
    assert whole["sentence_id"].nunique() == 60
    assert whole.groupby("sentence_id", sort=False)["token_index"].apply(lambda t: list(t) == list(range(len(t)))).all()
    for blocksize in (64, 200, 1000):  # block edges fall inside sentences; 40-token sentences span several blocks
        read = read_corpus(str(path), blocksize=blocksize, **options)
        assert read.rows.npartitions > 3
        pd.testing.assert_frame_equal(compute_rows(read), whole)
