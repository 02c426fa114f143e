"""Published numbers that ezrobot's results are compared against, as data, each with its source.

Every table maps task (or game) -> method -> score. ``None`` means: no per-task number for that
method at that budget was found in a source that could be read; such a cell is left empty rather
than estimated. ``SOURCES`` names the paper (and table) behind each column, ``BUDGETS`` the data budget
of each table, and ``APPROXIMATE`` the columns read off a paper's learning curves rather than from a
printed table (those numbers are rounded to about +-20). See also docs/REFERENCES.md.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

Scores = Dict[str, Dict[str, Optional[float]]]

PROPRIO_TASKS = ("cartpole-balance", "cartpole-swingup", "cheetah-run", "ball_in_cup-catch",
                 "finger-spin", "reacher-easy", "walker-walk")
PIXEL_TASKS = ("cartpole-swingup", "reacher-easy", "finger-spin", "cheetah-run", "walker-walk",
               "ball_in_cup-catch")

SOURCES: Dict[str, str] = {
    "EZ-V2": "S. Wang, S. Liu, W. Ye, J. You, Y. Gao. EfficientZero V2: Mastering Discrete and Continuous "
             "Control with Limited Data. ICML 2024, arXiv 2403.00564. Atari: per-game table; DMC: final "
             "points of the per-task curves in the appendix figures (Proprio Control, Vision Control), "
             "the same figures as media/imgs/dmc_{proprio,vision}_app.png in the authors' repository.",
    "TD-MPC2": "N. Hansen, H. Su, X. Wang. TD-MPC2: Scalable, Robust World Models for Continuous Control. "
               "ICLR 2024, arXiv 2310.16828; per-seed results released in github.com/nicklashansen/tdmpc2, "
               "results/tdmpc2/<task>.csv.",
    "DreamerV3": "D. Hafner, J. Pasukonis, J. Ba, T. Lillicrap. Mastering Diverse Domains through World "
                 "Models. arXiv 2301.04104; DMC proprio runs as released by TD-MPC2 "
                 "(results/dreamerv3/<task>.csv in github.com/nicklashansen/tdmpc2).",
    "SAC": "T. Haarnoja, A. Zhou, P. Abbeel, S. Levine. Soft Actor-Critic. ICML 2018, arXiv 1801.01290; "
           "DMC proprio runs as released by TD-MPC2 (results/sac/<task>.csv in github.com/nicklashansen/tdmpc2).",
    "CURL": "M. Laskin, A. Srinivas, P. Abbeel. CURL: Contrastive Unsupervised Representations for "
            "Reinforcement Learning. ICML 2020, arXiv 2004.04136, Table 1 (100k env steps).",
    "DrQ": "I. Kostrikov, D. Yarats, R. Fergus. Image Augmentation Is All You Need: Regularizing Deep "
           "Reinforcement Learning from Pixels. ICLR 2021, arXiv 2004.13649, Table 1 (100k env steps).",
    "SPR": "M. Schwarzer et al. Data-Efficient Reinforcement Learning with Self-Predictive "
           "Representations. ICLR 2021, arXiv 2007.05929, per-game Atari 100k table.",
    "EfficientZero": "W. Ye, S. Liu, T. Kurutach, P. Abbeel, Y. Gao. Mastering Atari Games with Limited "
                     "Data. NeurIPS 2021, arXiv 2111.00210, per-game Atari 100k table (NeurIPS version).",
    "BBF": "M. Schwarzer et al. Bigger, Better, Faster: Human-level Atari with human-level efficiency. "
           "ICML 2023, arXiv 2305.19452, per-game Atari 100k table.",
    "random/human": "The standard Atari random and human reference scores (V. Mnih et al., Nature 2015), "
                    "as printed in the SPR, EfficientZero and BBF per-game tables.",
}

BUDGETS: Dict[str, str] = {
    "DMC_PROPRIO": "100k environment (simulator) steps = 50k agent steps at action repeat 2.",
    "DMC_PROPRIO_200K_ENV": "100k agent steps at action repeat 2 = 200k environment steps (TD-MPC2's "
                            "csv 'step' column counts agent steps: its DMC wrapper repeats each action "
                            "twice and episodes last 500 agent steps).",
    "DMC_PIXELS": "100k environment steps, the classic DMControl-100k protocol (PlaNet action repeats); "
                  "column 'EZ-V2@200k' is at 200k environment steps, NOT the same budget.",
    "ATARI100K": "100k agent steps = 400k frames (frame skip 4).",
}

# Columns whose numbers were read off learning curves (table, column) -> note.
APPROXIMATE: Dict[Tuple[str, str], str] = {
    ("DMC_PROPRIO", "EZ-V2"): "final curve point at x = 1e5 environment steps, read by eye",
    ("DMC_PIXELS", "EZ-V2@200k"): "final curve point at x = 2e5 environment steps, read by eye",
}

# DMC proprio at 100k env steps. EZ-V2: paper appendix curves (approximate). TD-MPC2 / DreamerV3 / SAC:
# EZ-V2's per-task appendix table could not be read, and the released TD-MPC2 results have no point at
# 100k env steps (their grid is every 100k *agent* steps), so these stay None; see DMC_PROPRIO_200K_ENV.
_EZV2_PROPRIO = (950.0, 805.0, 595.0, 960.0, 835.0, 940.0, 940.0)
DMC_PROPRIO: Scores = {
    task: {"EZ-V2": ez, "TD-MPC2": None, "DreamerV3": None, "SAC": None}
    for task, ez in zip(PROPRIO_TASKS, _EZV2_PROPRIO)
}

# DMC proprio at 100k agent steps (= 200k env steps): mean over the 3 released seeds at step 100000 of
# results/{tdmpc2,dreamerv3,sac}/<task>.csv in github.com/nicklashansen/tdmpc2 (TD-MPC2's own runs of
# each method). A different budget from DMC_PROPRIO: do not put these beside a 100k-env-step result.
DMC_PROPRIO_200K_ENV: Scores = {
    "cartpole-balance": {"TD-MPC2": 997.8, "DreamerV3": 912.6, "SAC": 998.7},
    "cartpole-swingup": {"TD-MPC2": 839.4, "DreamerV3": 676.7, "SAC": 835.0},
    "cheetah-run": {"TD-MPC2": 519.1, "DreamerV3": 335.7, "SAC": 310.1},
    "ball_in_cup-catch": {"TD-MPC2": 981.2, "DreamerV3": 870.5, "SAC": 958.1},
    "finger-spin": {"TD-MPC2": 947.5, "DreamerV3": 328.3, "SAC": 762.4},
    "reacher-easy": {"TD-MPC2": 936.9, "DreamerV3": 872.1, "SAC": 540.4},
    "walker-walk": {"TD-MPC2": 961.9, "DreamerV3": 630.1, "SAC": 708.2},
}

# DMC pixels, DMControl-100k (100k env steps): CURL and DrQ from their papers' Table 1. No readable
# per-task DreamerV3 or EZ-V2 number at 100k env steps was found: None. EZ-V2's vision curves end at
# 200k env steps; their final points are kept in the separate, labelled column "EZ-V2@200k".
_CURL = (582.0, 538.0, 767.0, 299.0, 403.0, 769.0)
_DRQ = (759.0, 601.0, 901.0, 344.0, 612.0, 913.0)
_EZV2_VISION_200K = (745.0, 960.0, 925.0, 620.0, 880.0, 970.0)
DMC_PIXELS: Scores = {
    task: {"CURL": c, "DrQ": d, "DreamerV3": None, "EZ-V2": None, "EZ-V2@200k": e}
    for task, c, d, e in zip(PIXEL_TASKS, _CURL, _DRQ, _EZV2_VISION_200K)
}

# Atari 100k per-game means: (random, human, SPR, EfficientZero, EZ-V2, BBF). Sources: SOURCES above
# (SPR arXiv 2007.05929, EfficientZero arXiv 2111.00210 NeurIPS version, EZ-V2 arXiv 2403.00564,
# BBF arXiv 2305.19452; random/human the standard pair printed in those tables).
ATARI_COLUMNS = ("random", "human", "SPR", "EfficientZero", "EZ-V2", "BBF")
_ATARI_ROWS = {
    "Alien":           (227.8, 7127.7, 801.5, 808.5, 1557.7, 1173.2),
    "Amidar":          (5.8, 1719.5, 176.3, 148.6, 184.9, 244.6),
    "Assault":         (222.4, 742.0, 571.0, 1263.1, 1757.5, 2098.5),
    "Asterix":         (210.0, 8503.3, 977.8, 25557.8, 61810.0, 3946.1),
    "BankHeist":       (14.2, 753.1, 380.9, 351.0, 1316.7, 732.9),
    "BattleZone":      (2360.0, 37187.5, 16651.0, 13871.2, 14433.3, 24459.8),
    "Boxing":          (0.1, 12.1, 35.8, 52.7, 75.0, 85.8),
    "Breakout":        (1.7, 30.5, 17.1, 414.1, 400.1, 370.6),
    "ChopperCommand":  (811.0, 7387.8, 974.8, 1117.3, 1196.6, 7549.3),
    "CrazyClimber":    (10780.5, 35829.4, 42923.6, 83940.2, 112363.3, 58431.8),
    "DemonAttack":     (152.1, 1971.0, 545.2, 13003.9, 22773.5, 13341.4),
    "Freeway":         (0.0, 29.6, 24.4, 21.8, 0.0, 25.5),
    "Frostbite":       (65.2, 4334.7, 1821.5, 296.3, 1136.3, 2384.8),
    "Gopher":          (257.6, 2412.5, 715.2, 3260.3, 3868.7, 1331.2),
    "Hero":            (1027.0, 30826.4, 7019.2, 9315.9, 9705.0, 7818.6),
    "Jamesbond":       (29.0, 302.8, 365.4, 517.0, 468.3, 1129.6),
    "Kangaroo":        (52.0, 3035.0, 3276.4, 724.1, 1886.7, 6614.7),
    "Krull":           (1598.0, 2665.5, 3688.9, 5663.3, 9080.0, 8223.4),
    "KungFuMaster":    (258.5, 22736.3, 13192.7, 30944.8, 28883.3, 18991.7),
    "MsPacman":        (307.3, 6951.6, 1313.2, 1281.2, 2251.0, 2008.3),
    "Pong":            (-20.7, 14.6, -5.9, 20.1, 20.8, 16.7),
    "PrivateEye":      (24.9, 69571.3, 124.0, 96.7, 99.8, 40.5),
    "Qbert":           (163.9, 13455.0, 669.1, 13781.9, 16058.3, 4447.1),
    "RoadRunner":      (11.5, 7845.0, 14220.5, 17751.3, 27516.7, 33426.8),
    "Seaquest":        (68.4, 42054.7, 583.1, 1100.2, 1974.0, 1232.5),
    "UpNDown":         (533.4, 11693.2, 28138.5, 17264.2, 15224.3, 12101.7),
}
ATARI100K: Scores = {game: dict(zip(ATARI_COLUMNS, row)) for game, row in _ATARI_ROWS.items()}
ATARI_GAMES = tuple(ATARI100K)


def hns(game: str, score: float) -> float:
    """Human-normalised score of ``score`` on Atari ``game``: (score - random) / (human - random)."""
    ref = ATARI100K[game]
    return (float(score) - ref["random"]) / (ref["human"] - ref["random"])


def published_hns(method: str) -> Dict[str, float]:
    """Per-game human-normalised scores of a published Atari 100k column (e.g. ``"EZ-V2"``)."""
    return {game: hns(game, row[method]) for game, row in ATARI100K.items()}
