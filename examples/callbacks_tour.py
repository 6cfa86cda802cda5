"""A tour of the callback core: three ways to add a callback, rewriting arguments and results.

Run: make tour   (or: .venv/bin/python examples/callbacks_tour.py)
"""

from arctic_like import CallbackError, CallbackMixin


def log_batch(self, batch):
    print(f"  [class list]   pre-step sees batch={batch}")
    return batch


class Trainer(CallbackMixin):
    callbacks = [("pre-step", log_batch)]  # 1. declared on the class

    def step(self, batch, scale=1.0):
        print(f"  [method]       step(batch={batch}, scale={scale})")
        return batch * scale

    def post_step_callback(self, result):  # 2. a callback method
        print(f"  [method cb]    post-step turns {result} into {result + 1}")
        return result + 1


def main() -> None:
    trainer = Trainer()
    print("A plain call:")
    print("  ->", trainer.step(3))

    print("\nA runtime callback on this instance doubles `scale`:")
    trainer.callbacks.append(("pre-step", lambda self, scale: scale * 2))  # 3. at runtime
    print("  ->", trainer.step(3))

    print("\nAnother instance is untouched:")
    print("  ->", Trainer().step(3))

    print("\nThe chain, in run order:")
    print(trainer.describe_callbacks())

    print("\nA mistake is caught when it is made, not at the first call:")
    try:
        trainer.callbacks.append(("pre-stpe", log_batch))
    except CallbackError as exc:
        print(" ", exc)


if __name__ == "__main__":
    main()
