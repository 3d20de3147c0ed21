"""Train a model with GRPO (TRL) on loong_env problems, rewarded by loong_env's verifiers.

    make grpo-example                                     # a few real GRPO steps on CPU, nothing downloaded
    python examples/train_grpo.py --tiny                  # the same, in a venv with torch + trl
    python examples/train_grpo.py --model Qwen/Qwen2.5-0.5B-Instruct --domain graph_discrete_math --n 256

`--tiny` builds a character-level tokenizer from the prompts and a 2-layer Qwen2 model with random weights
in-process, so it runs offline in about a minute: the point is the plumbing (our prompts, our reward
functions, TRL's GRPO loop), not learning. The dataset holds a `prompt` plus the columns the reward reads
(answer, domain, tolerance, verifier, requirements); GRPOTrainer passes them to the reward functions as
keyword lists. `loong_correctness` is 1.0 for a verified answer; `format` is 1.0 for exactly one \\boxed{}.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from loong_env.integrations.trl import areward_fn, format_reward_fn, reward_fn, to_grpo_dataset
from loong_env.seeds import load_seeds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct", help="policy: a hub id or local path")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model and tokenizer built in-process")
    parser.add_argument("--domain", default=None, help="seed domain (default: every domain under seeds/)")
    parser.add_argument("--n", type=int, default=256, help="prompts in the training set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/grpo-loong")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--num-generations", type=int, default=8, help="completions per prompt (the GRPO group)")
    parser.add_argument("--batch-size", type=int, default=8, help="per-device train batch size")
    parser.add_argument("--max-completion-length", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--use-vllm", action="store_true", help="generate with vLLM (TRL's default colocate mode: vLLM in this process, no server)")
    args = parser.parse_args()
    if args.tiny:  # small enough for a CPU in about a minute; explicit flags still win over these
        defaults = parser.parse_args([])
        for name, value in {"n": 16, "max_steps": 4, "num_generations": 4, "batch_size": 8, "max_completion_length": 24,
                                "learning_rate": 1e-3, "output_dir": "runs/grpo-tiny"}.items():
            if getattr(args, name) == getattr(defaults, name):
                setattr(args, name, value)
    return args


def tiny_policy(texts: list[str]) -> tuple[Any, Any]:
    """(model, tokenizer): a character-level tokenizer over `texts` and a 2-layer Qwen2 with random weights."""
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = sorted(set("".join(texts)) | set("0123456789{}\\"))
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<eos>", "<unk>", *chars])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_tokens([AddedToken("\\boxed{", normalized=False)])  # one token, so a random policy can box
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>",
                                        unk_token="<unk>")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def main() -> None:
    args = parse_args()
    try:
        from transformers import TrainerCallback
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise SystemExit("TRL is not installed: run `make trl-venv` (CPU torch + trl in .venv-trl)") from exc

    if args.tiny:  # deprecation notices from inside transformers/TRL say nothing about this example
        warnings.filterwarnings("ignore", category=FutureWarning)
    seeds = load_seeds(args.domain)
    dataset = to_grpo_dataset(seeds, args.n, seed=args.seed, conversational=not args.tiny)
    model: Any = args.model
    tokenizer = None
    if args.tiny:
        model, tokenizer = tiny_policy(list(dataset["prompt"]))

    def format(prompts, completions, **kwargs):
        return format_reward_fn(prompts, completions, **kwargs)

    class PrintRewards(TrainerCallback):
        """One line per step: the mean of each reward function and the weighted total."""

        def on_log(self, _args, state, _control, logs=None, **_):
            logs = logs or {}
            if "reward" in logs:
                parts = [f"{k.split('/')[1]}={v:.3f}" for k, v in logs.items()
                         if k.startswith("rewards/") and k.endswith("/mean")]
                # what our reward logged through TRL's log_metric: verdict shares, groups with no signal
                parts += [f"{k}={v:.2f}" for k, v in logs.items()
                          if k in ("loong/no_answer", "loong/zero_variance_fraction")]
                print(f"step {state.global_step}: reward={logs['reward']:.3f}  " + "  ".join(parts)
                      + f"  loss={float(logs.get('loss', 'nan')):.4f}", flush=True)

    # The correctness reward is rarely earned by a random policy: show it pays 1.0 for the right answers.
    probe = dataset.select(range(4))
    columns = {k: probe[k] for k in probe.column_names if k != "prompt"}
    boxed = [f"\\boxed{{{a}}}" for a in probe["answer"]]
    print(f"reward check, the reference answers boxed: {reward_fn(probe['prompt'], boxed, **columns)}")

    config = GRPOConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        reward_weights=[1.0, 0.1],
        logging_steps=1,
        seed=args.seed,
        use_vllm=args.use_vllm,
        report_to="none",
        use_cpu=args.tiny,
        bf16=False,
        save_strategy="no" if args.tiny else "steps",
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[areward_fn, format],  # async rewards are awaited concurrently by TRL
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[PrintRewards()],
    )
    if args.tiny:  # one line per step from PrintRewards instead of the progress bar and raw log dicts
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    if not args.tiny:
        trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
