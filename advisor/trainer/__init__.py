"""The reference trainer: small models on offline data, logged the way the advisor reads.

torch is imported only inside this package, and only by ``models.py`` and ``train.py``:
``config``, ``records``, ``schedules``, ``data``, ``presets`` and ``cli`` import without
it, so ``advisor --help`` stays fast and works where the ``trainer`` extra is missing.
Run a training with :func:`advisor.trainer.train.train`.
"""
