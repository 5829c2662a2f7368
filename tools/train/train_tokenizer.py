#!/usr/bin/env python3
"""Train the byte-level BPE tokenizer (vocabulary 4096) on the TRAINING split only.

Layout mirrors the Llama-3 tokenizer.json that BitNet b1.58 2B4T uses:
  * pre-tokenizer: Sequence[Split(Llama-3 regex, Isolated), ByteLevel(add_prefix_space=False,
    use_regex=False)]  -> what llama.cpp calls the `llama-bpe` pre-tokenizer;
  * model: BPE with ignore_merges=true (a pre-token that is itself in the vocabulary is
    emitted whole, as Llama-3 and llama.cpp's llama-bpe do);
  * decoder: ByteLevel;
  * post-processor: ByteLevel + TemplateProcessing prepending <|begin_of_text|> (BOS);
  * ids 0..4093: 256 byte symbols + 3838 learned merges; 4094 = <|begin_of_text|> (BOS),
    4095 = <|end_of_text|> (EOS), both special ("control") tokens, as in Llama-3 where the
    special tokens follow the BPE vocabulary.
"""
import argparse
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VOCAB = 4096
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def build(train_texts):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - 2,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(train_texts, trainer=trainer)
    assert tok.get_vocab_size() == VOCAB - 2, tok.get_vocab_size()
    tok.add_special_tokens([BOS, EOS])
    bos_id, eos_id = tok.token_to_id(BOS), tok.token_to_id(EOS)
    assert (bos_id, eos_id) == (VOCAB - 2, VOCAB - 1), (bos_id, eos_id)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B:1",
            special_tokens=[(BOS, bos_id)]),
    ])
    # Make sure ignore_merges survived training (Llama-3 / llama-bpe semantics).
    js = json.loads(tok.to_str())
    if not js["model"].get("ignore_merges", False):
        js["model"]["ignore_merges"] = True
        tok = Tokenizer.from_str(json.dumps(js))
    return tok, bos_id, eos_id


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "out", "data"))
    ap.add_argument("--out", default=os.path.join(here, "out", "tokenizer"))
    args = ap.parse_args()
    texts = [json.loads(l) for l in open(os.path.join(args.data, "train_docs.jsonl"))]
    tok, bos_id, eos_id = build(texts)
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 256,
        "model_input_names": ["input_ids", "attention_mask"],
        "added_tokens_decoder": {
            str(bos_id): {"content": BOS, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False, "special": True},
            str(eos_id): {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False, "special": True},
        },
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": BOS, "eos_token": EOS}, f, indent=2)
        f.write("\n")
    held = open(os.path.join(args.data, "heldout.txt")).read()
    ids = tok.encode(held, add_special_tokens=False).ids
    assert tok.decode(ids, skip_special_tokens=False) == held, "byte-level round trip failed"
    train_chars = sum(len(t) for t in texts)
    print(f"vocab={tok.get_vocab_size()} bos={bos_id} eos={eos_id} heldout_tokens={len(ids)} "
          f"chars/token(heldout)={len(held) / len(ids):.3f} train_chars={train_chars}")
    print("example:", tok.encode("ROMEO:\nBut soft, what light through yonder window breaks?").tokens)


if __name__ == "__main__":
    main()
