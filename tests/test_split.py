"""Splitting books into passages: limits, overlap, sentence integrity, chapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.data.documents import read_document
from bgekit.data.sentences import chapter_heading, split_sentences
from bgekit.data.split import Measure

BOOKS = Path(__file__).parent / "data" / "books"
ZH, EN = BOOKS / "hongloumeng.txt", BOOKS / "pride.txt"


def _split(tmp_path, *args) -> list[dict]:
    out = tmp_path / "passages.jsonl"
    result = CliRunner().invoke(main, ["data", "split", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _all_sentences(path: Path) -> set[str]:
    doc = read_document(path)
    return {s for c in doc.chapters for p in c.paragraphs for s in split_sentences(p)}


def _sentences_of(text: str) -> list[str]:
    return [s for line in text.split("\n") for s in split_sentences(line)]


@pytest.mark.parametrize("book,size,overlap", [(ZH, 80, 25), (EN, 300, 120)])
def test_sentence_split_keeps_limits_overlap_and_whole_sentences(book, size, overlap, tmp_path):
    passages = _split(tmp_path, str(book), "--chunk-size", str(size), "--overlap", str(overlap), "--by", "sentence")
    sentences = _all_sentences(book)
    longest = max(len(s) for s in sentences)
    assert longest < size  # so no passage may be cut inside a sentence
    assert [p["position"] for p in passages] == list(range(len(passages)))
    overlaps = 0
    for p in passages:
        assert len(p["text"]) <= size
        assert all(s in sentences for s in _sentences_of(p["text"])), p["text"]
    for a, b in zip(passages, passages[1:]):
        if a["chapter"] != b["chapter"]:
            continue
        shared = [s for s in _sentences_of(b["text"]) if s in _sentences_of(a["text"])]
        tail = _sentences_of(a["text"])[-len(shared):] if shared else []
        assert shared == tail  # the overlap is the end of the previous passage ...
        assert len("".join(shared)) <= overlap  # ... and no longer than asked
        overlaps += bool(shared)
    assert overlaps >= 1
    # every sentence of the book is in some passage
    covered = {s for p in passages for s in _sentences_of(p["text"])}
    assert covered == sentences


def test_chapters_are_detected_and_recorded(tmp_path):
    zh = _split(tmp_path, str(ZH), "--chunk-size", "80")
    assert zh[0]["doc_id"] == "hongloumeng" and zh[0]["id"] == "hongloumeng#0"
    assert [c for c in dict.fromkeys(p["chapter"] for p in zh)] == [
        "第一回 甄士隐梦幻识通灵 贾雨村风尘怀闺秀", "第二回 贾夫人仙逝扬州城 冷子兴演说荣国府"]
    assert not any("第二回" in p["text"] for p in zh)
    en = _split(tmp_path, str(EN), "--chunk-size", "300")
    assert [c for c in dict.fromkeys(p["chapter"] for p in en)] == ["Chapter 1", "Chapter 2"]
    assert "single man in possession of a good fortune" in en[0]["text"]  # hard wraps joined


def test_chinese_and_english_sentence_boundaries():
    assert split_sentences("他说：“快请出甄爷来！”封肃忙陪笑道：“小人姓封。”真的吗？？是的……好吧；再见。") == [
        "他说：“快请出甄爷来！”", "封肃忙陪笑道：“小人姓封。”", "真的吗？？", "是的……", "好吧；", "再见。"]
    assert split_sentences('"My dear Mr. Bennet," said his lady. "Have you heard?" He had not. It was 3.5 p.m. then') == [
        '"My dear Mr. Bennet," said his lady.', '"Have you heard?"', "He had not.", "It was 3.5 p.m. then"]
    assert chapter_heading("第十二章 风暴") and chapter_heading("CHAPTER IV") and chapter_heading("Chapter Twenty-One")
    assert not chapter_heading("Part of the problem") and not chapter_heading("第一回的故事很长，讲的是一个人。")


def test_a_sentence_longer_than_the_limit_is_the_only_thing_cut(tmp_path):
    book = tmp_path / "long.txt"
    long_sentence = "这是一个非常长的句子" * 10 + "。"
    book.write_text(f"短句一。{long_sentence}短句二。\n", encoding="utf-8")
    passages = _split(tmp_path, str(book), "--chunk-size", "30", "--overlap", "5")
    assert all(len(p["text"]) <= 30 for p in passages)
    assert passages[0]["text"] == "短句一。"
    assert passages[-1]["text"].endswith("短句二。")
    pieces = [p["text"] for p in passages[1:-1]]
    assert all(piece in long_sentence for piece in pieces)
    assert long_sentence.startswith(pieces[0]) and long_sentence.endswith(pieces[-1])
    assert all(a[-5:] == b[:5] for a, b in zip(pieces, pieces[1:]))  # windows keep the overlap


def test_window_split_has_exact_overlap(tmp_path):
    passages = _split(tmp_path, str(ZH), "--chunk-size", "50", "--overlap", "10", "--by", "window")
    for a, b in zip(passages, passages[1:]):
        if a["chapter"] == b["chapter"] and len(a["text"]) == 50:
            assert a["text"][-10:] == b["text"][:10]


def test_paragraph_split_keeps_whole_paragraphs(tmp_path):
    passages = _split(tmp_path, str(EN), "--chunk-size", "600", "--by", "paragraph")
    paragraphs = {p for c in read_document(EN).chapters for p in c.paragraphs}
    for p in passages:
        assert len(p["text"]) <= 600
        assert all(part in paragraphs for part in p["text"].split("\n"))


def test_token_sizes_with_a_tokenizer(tmp_path):
    from bgekit.testing import tiny_encoder
    from transformers import AutoTokenizer

    model = tiny_encoder(tmp_path / "tiny")
    tok = AutoTokenizer.from_pretrained(str(model))
    passages = _split(tmp_path, str(ZH), "--chunk-size", "40", "--overlap", "8", "--tokenizer", str(model))
    assert passages
    for p in passages:
        assert len(tok(p["text"], add_special_tokens=False)["input_ids"]) <= 40
    assert Measure(tok)("长江") == len(tok("长江", add_special_tokens=False)["input_ids"])


def test_epub_through_ebooklib(tmp_path):
    epub = pytest.importorskip("ebooklib.epub")
    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("测试之书")
    book.set_language("zh")
    chapters = []
    for i, body in enumerate(["<h1>第一章 开始</h1><p>第一句话。第二句话！</p>",
                              "<h1>第二章 结束</h1><p>最后一句话。</p>"], 1):
        ch = epub.EpubHtml(title=f"c{i}", file_name=f"c{i}.xhtml", lang="zh")
        ch.content = f"<html><body>{body}</body></html>"
        book.add_item(ch)
        chapters.append(ch)
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    path = tmp_path / "book.epub"
    epub.write_epub(str(path), book)
    passages = _split(tmp_path, str(path), "--chunk-size", "100")
    assert [(p["chapter"], p["text"]) for p in passages] == [
        ("第一章 开始", "第一句话。第二句话！"), ("第二章 结束", "最后一句话。")]
    assert passages[0]["title"] == "测试之书"


def test_bad_arguments_are_clear(tmp_path):
    result = CliRunner().invoke(main, ["data", "split", str(ZH), "--out", str(tmp_path / "o.jsonl"),
                                       "--chunk-size", "10", "--overlap", "10"])
    assert result.exit_code == 1 and "--overlap must be" in result.output
    other = tmp_path / "x.pdf"
    other.write_bytes(b"%PDF")
    result = CliRunner().invoke(main, ["data", "split", str(other), "--out", str(tmp_path / "o.jsonl"),
                                       "--chunk-size", "10"])
    assert result.exit_code == 1 and ".txt, .md, .markdown, .epub" in result.output
