"""Train a small model with GRPO (TRL) on loong_env problems, rewarded by loong_env's verifiers.

    uv sync --extra trl        # or: pip install 'loong-env[trl]'
    python examples/train_grpo.py --model Qwen/Qwen2.5-0.5B-Instruct --domain graph_discrete_math --n 256

The dataset holds a `prompt` (chat messages) plus the columns the reward reads (answer, domain, tolerance,
verifier, requirements); GRPOTrainer passes those columns to the reward functions as keyword lists.
`loong_correctness` is 1.0 for a verified answer; `format` adds a small bonus for one \\boxed{} answer.
"""

from __future__ import annotations

import argparse

from loong_env.seeds import load_seeds
from loong_env.trl import areward_fn, format_reward_fn, to_grpo_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="Qwen/Qwen2.5-0.5B-Instruct", help="policy: a hub id or local path"
    )
    parser.add_argument("--domain", default=None, help="seed domain (default: every domain under seeds/)")
    parser.add_argument("--n", type=int, default=256, help="prompts in the training set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/grpo-loong")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument(
        "--num-generations", type=int, default=8, help="completions per prompt (the GRPO group)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="per-device train batch size")
    parser.add_argument("--max-completion-length", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--use-vllm", action="store_true", help="generate with vLLM (needs `trl vllm-serve`)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise SystemExit(
            "TRL is not installed: run `uv sync --extra trl` (or pip install 'loong-env[trl]')"
        ) from exc

    seeds = load_seeds(args.domain)
    dataset = to_grpo_dataset(seeds, args.n, seed=args.seed, conversational=True)

    def format_reward(prompts, completions, **kwargs):  # named so TRL logs it as reward/format
        return format_reward_fn(prompts, completions, **kwargs)

    config = GRPOConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        reward_weights=[1.0, 0.1],
        remove_unused_columns=False,  # keep answer/domain/tolerance for the reward functions
        logging_steps=1,
        seed=args.seed,
        use_vllm=args.use_vllm,
    )
    trainer = GRPOTrainer(
        model=args.model,
        reward_funcs=[areward_fn, format_reward],  # async rewards are awaited concurrently by TRL
        args=config,
        train_dataset=dataset,
    )
    trainer.train()
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
