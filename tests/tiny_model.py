"""Build a tiny random-weight Llama with a word-level tokenizer, saved like a real model.

Tests load it through the real loader, so every code path (template, streaming, stop) runs
on actual transformers objects, in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "the a an is are was be to of and in on for with you I we they it this that what how why "
    "hello hi yes no please thanks model user system assistant answer question story dragon "
    "cat dog red blue green one two three four five six seven eight nine ten code python file "
    "page document search find stop go run fast slow big small good bad new old time day night"
).split()
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def build_tiny_model(directory: Path, model_type: str = "llama", with_template: bool = False) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS + list(".,!?:\n"))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Punctuation()])
    from tokenizers import decoders

    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
    )
    if with_template:
        tokenizer.chat_template = (
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}assistant:{% endif %}"
        )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=vocab["<bos>"], eos_token_id=vocab["<eos>"], pad_token_id=vocab["<pad>"],
    )
    model = LlamaForCausalLM(config)
    # Never emit EOS/PAD on its own: tests control when generation ends.
    with torch.no_grad():
        model.lm_head.weight[vocab["<eos>"]] = -1.0
        model.lm_head.weight[vocab["<pad>"]] = -1.0
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
