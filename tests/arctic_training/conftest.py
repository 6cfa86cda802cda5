from pathlib import Path

import pytest

from tests.arctic_training import tiny


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama and its tokenizer saved with save_pretrained."""
    return tiny.save_pretrained(tmp_path_factory.mktemp("at") / "tiny-llama")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chat, messages, text and preference rows saved with save_to_disk."""
    root = tmp_path_factory.mktemp("at-data")
    tiny.save_chat(root / "chat")
    tiny.save_messages(root / "messages")
    tiny.save_text(root / "text")
    tiny.save_chat_pairs(root / "chat_pairs")
    return root
