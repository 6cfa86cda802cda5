from types import SimpleNamespace

import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from arctic_like.tokenizer import (
    BPETokenizerConfig,
    BPETokenizerFactory,
    CharTokenizerFactory,
    HFTokenizerConfig,
    HFTokenizerFactory,
    TokenizerFactory,
    TrainedTokenizerConfig,
)

TEXTS = ["12+7=19", "3+4=7", "hello world\nsecond line", "the quick brown fox"] * 20


class FakeData:
    def __init__(self):
        self.calls = 0

    def raw_texts(self):
        self.calls += 1
        yield from TEXTS


def test_char_tokenizer_round_trips_and_has_special_tokens():
    tok = CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=TEXTS))()
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert (tok.pad_token, tok.unk_token, tok.bos_token, tok.eos_token) == ("<pad>", "<unk>", "<s>", "</s>")
    assert [tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id] == [0, 1, 2, 3]
    ids = tok("12+7=19\nhi", add_special_tokens=False)["input_ids"]
    assert len(ids) == 10
    assert tok.decode(ids) == "12+7=19\nhi"
    assert tok.decode(tok("é", add_special_tokens=False)["input_ids"]) == "<unk>"
    assert len(tok) == 4 + len(set("".join(TEXTS)))


def test_char_tokenizer_trains_on_the_data_factory_texts():
    data = FakeData()
    tok = CharTokenizerFactory(SimpleNamespace(data_factory=data), TrainedTokenizerConfig(max_texts=2))()
    assert data.calls == 1
    assert set(tok.get_vocab()) == {"<pad>", "<unk>", "<s>", "</s>", *"12+7=934"}


def test_trained_tokenizer_without_data_factory_is_an_error():
    with pytest.raises(
        ValueError, match=r"the 'char' tokenizer trains on the training text, but the trainer has no data"
    ):
        CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig())()


def test_char_tokenizer_without_text_is_an_error():
    with pytest.raises(ValueError, match="the char tokenizer got no training text"):
        CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=[]))()


def test_bpe_tokenizer_learns_merges_and_round_trips():
    tok = BPETokenizerFactory(SimpleNamespace(data_factory=FakeData()), BPETokenizerConfig(vocab_size=300))()
    assert 256 < len(tok) <= 300
    ids = tok("the quick brown fox", add_special_tokens=False)["input_ids"]
    assert len(ids) < len("the quick brown fox")
    assert tok.decode(ids) == "the quick brown fox"
    assert tok.decode(tok("unseen ✓", add_special_tokens=False)["input_ids"]) == "unseen ✓"
    assert tok.pad_token_id is not None and tok.eos_token_id is not None


def test_bpe_config_limits():
    with pytest.raises(ValidationError, match="vocab_size"):
        BPETokenizerConfig(vocab_size=4)
    assert BPETokenizerConfig(vocab_size="1k").vocab_size == 1000


def test_saved_tokenizer_loads_through_huggingface_factory(tmp_path):
    trained = CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=TEXTS))()
    trained.save_pretrained(tmp_path / "tok")
    tok = HFTokenizerFactory(SimpleNamespace(), HFTokenizerConfig(name_or_path=str(tmp_path / "tok")))()
    assert tok.get_vocab() == trained.get_vocab()
    assert tok.decode(tok("3+4=7", add_special_tokens=False)["input_ids"]) == "3+4=7"
    assert tok.eos_token == "</s>"


def test_huggingface_factory_sets_missing_pad_token(tmp_path):
    trained = CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=TEXTS))()
    trained.pad_token = None
    trained.save_pretrained(tmp_path / "nopad")
    assert AutoTokenizer.from_pretrained(tmp_path / "nopad").pad_token is None
    tok = HFTokenizerFactory(SimpleNamespace(), HFTokenizerConfig(name_or_path=str(tmp_path / "nopad")))()
    assert tok.pad_token == "</s>"
    tok = HFTokenizerFactory(
        SimpleNamespace(), HFTokenizerConfig(name_or_path=str(tmp_path / "nopad"), pad_token="<pad>")
    )()
    assert tok.pad_token == "<pad>"


def test_huggingface_factory_missing_path(tmp_path):
    with pytest.raises(
        ValidationError,
        match=r"directory '.*missing' does not exist\. Fix: correct tokenizer\.name_or_path .*save "
        r"the tokenizer there first",
    ):
        HFTokenizerConfig(name_or_path=str(tmp_path / "missing"))


def test_huggingface_factory_folder_without_a_tokenizer(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ValueError,
        match=r"cannot load a tokenizer from '.*empty': .* Fix: point tokenizer\.name_or_path at a",
    ):
        HFTokenizerFactory(SimpleNamespace(), HFTokenizerConfig(name_or_path=str(tmp_path / "empty")))()


def test_events_fire_and_callbacks_can_replace_the_tokenizer():
    seen = []

    class Recording(CharTokenizerFactory):
        name = "recording-char"

        def post_create_tokenizer_callback(self, tokenizer):
            seen.append(len(tokenizer))
            tokenizer.model_max_length = 77
            return tokenizer

    tok = Recording(SimpleNamespace(), TrainedTokenizerConfig(texts=["ab"]))()
    assert seen == [6] and tok.model_max_length == 77


def test_base_factory_requires_create_tokenizer():
    with pytest.raises(NotImplementedError, match="must implement create_tokenizer"):
        TokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig())()


@pytest.mark.parametrize("factory", [CharTokenizerFactory, BPETokenizerFactory])
def test_trained_tokenizers_put_bos_before_a_text_like_llama(factory, tmp_path):
    config = factory.config(texts=TEXTS)
    tok = factory(SimpleNamespace(), config)()
    plain = tok("3+4=7", add_special_tokens=False)["input_ids"]
    assert tok("3+4=7")["input_ids"] == [tok.bos_token_id, *plain]
    assert tok("3+4=", "7")["input_ids"] == [tok.bos_token_id, *plain[:-1], tok.bos_token_id, plain[-1]]
    assert tok.add_bos_token is True and tok.add_eos_token is False
    tok.save_pretrained(tmp_path / "tok")
    assert AutoTokenizer.from_pretrained(tmp_path / "tok")("3+4=7")["input_ids"] == [tok.bos_token_id, *plain]


def test_trained_tokenizer_without_bos_and_with_a_chat_template():
    template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    config = TrainedTokenizerConfig(texts=[*TEXTS, "<>usrae"], add_bos_token=False, chat_template=template)
    tok = CharTokenizerFactory(SimpleNamespace(), config)()
    assert tok("3+4=7")["input_ids"] == tok("3+4=7", add_special_tokens=False)["input_ids"]
    assert tok.add_bos_token is False
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "<user>hi"


def test_huggingface_factory_can_replace_the_chat_template(tmp_path):
    CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=TEXTS))().save_pretrained(
        tmp_path / "t"
    )
    config = HFTokenizerConfig(name_or_path=str(tmp_path / "t"), chat_template="{{ messages[0]['content'] }}")
    tok = HFTokenizerFactory(SimpleNamespace(), config)()
    assert tok.apply_chat_template([{"role": "user", "content": "12"}], tokenize=False) == "12"
