"""Plain-Python reference of every search variant: one Node object per node, one tree at a time.

Slow and written to be read against docs/REFERENCES.md §1-3. It draws from the numpy Generator in the engine's
documented order (root sample noise, root Dirichlet / Gumbel noise, tie seed, per-simulation action noise
[B, D], final uniforms) and uses the same float64 arithmetic, so golden tests can demand identical results.
``model(b, parent_slot, action, child_slot) -> (value, value_prefix, policy_row)`` is called per tree.
"""
from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
TINY = 1.1754943508222875e-38


def splitmix64(x: int) -> int:
    x &= MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def tie_index(seed: int, b: int, sim: int, depth: int, count: int) -> int:
    key = (seed + (b << 32) + (sim << 12) + depth) & MASK64
    return splitmix64(key) % count


def softplus(x: float) -> float:
    return x if x > 20.0 else math.log1p(math.exp(x))


class Node:
    def __init__(self, index, parent, depth, reset, value, value_prefix, reward):
        self.index, self.parent, self.depth, self.reset = index, parent, depth, reset
        self.raw, self.value_prefix, self.reward = value, value_prefix, reward
        self.visits, self.value_sum = 0, 0.0
        self.children, self.priors, self.logits, self.actions = [], [], [], []

    def q(self, discount):
        return self.reward + discount * (self.value_sum / self.visits)


def expand_discrete(node, logits):
    top = float(logits[0])
    for x in logits[1:]:
        top = max(top, float(x))
    exps = [math.exp(float(x) - top) for x in logits]
    total = 0.0
    for e in exps:
        total += e
    node.priors = [e / total for e in exps]
    node.logits = [float(x) - top - math.log(total) for x in logits]
    node.children = [None] * len(logits)


def expand_continuous(node, head, eps, num, widened, scale):
    """The root: all ``num`` actions drawn now, the last ``widened`` ones with std x ``scale``."""
    dims = len(head) // 2
    node.actions = [[0.0] * dims for _ in range(num)]
    for d in range(dims):
        mu, sigma = mean_std(head, d)
        for k in range(num):
            s = sigma * scale if k >= num - widened else sigma
            node.actions[k][d] = float(np.float32(math.tanh(mu + s * float(eps[k][d]))))
    node.priors = [1.0 / num] * num
    node.logits = [-math.log(num)] * num
    node.children = [None] * num


def mean_std(head, d):
    dims = len(head) // 2
    return 5.0 * math.tanh(float(head[d]) / 5.0), softplus(float(head[dims + d]) + 1.0) + 0.1


def expand_interior_continuous(node, head, num):
    """An interior node keeps its Gaussian; a child's action is drawn when the child is first expanded."""
    node.dist = [mean_std(head, d) for d in range(len(head) // 2)]
    node.actions = [None] * num
    node.priors = [1.0 / num] * num
    node.logits = [-math.log(num)] * num
    node.children = [None] * num


def draw_action(node, a, eps):
    node.actions[a] = [float(np.float32(math.tanh(mu + sigma * float(e)))) for (mu, sigma), e in zip(node.dist, eps)]


def importance_prior(node, head, eps, num, widened, scale):
    """beta_hat / beta * pi for the mixture proposal (pre-tanh densities, shared constants dropped)."""
    dims = len(head) // 2
    w = widened / num
    log_keep = math.log(1.0 - w) if w < 1.0 else -math.inf
    ratios = []
    for k in range(num):
        log_pi = log_w = 0.0
        for d in range(dims):
            sigma = softplus(float(head[dims + d]) + 1.0) + 0.1
            z = (scale if k >= num - widened else 1.0) * float(eps[k][d])
            log_pi += -0.5 * z * z - math.log(sigma)
            zw = z / scale
            log_w += -0.5 * zw * zw - math.log(sigma * scale)
        a, c = log_keep + log_pi, math.log(w) + log_w
        top = max(a, c)
        ratios.append(math.exp(log_pi - (top + math.log(math.exp(a - top) + math.exp(c - top)))))
    total = 0.0
    for r in ratios:
        total += r
    node.priors = [r / total for r in ratios]
    node.logits = [math.log(p) for p in node.priors]


class Tree:
    def __init__(self, cfg, discount, gumbel_noise, table, seed, b, gumbel):
        self.cfg, self.discount, self.g, self.table, self.seed, self.b = cfg, discount, gumbel_noise, table, seed, b
        self.gumbel = gumbel
        self.nodes, self.qmin, self.qmax = [], math.inf, -math.inf
        self.depth_sum, self.depth_max = 0, 0

    def normalize(self, q, qrange=None):
        qmin, qmax = qrange if qrange is not None else (self.qmin, self.qmax)
        if qmax >= qmin:
            q = (q - qmin) / max(qmax - qmin, self.cfg.min_max_floor)
        return min(1.0, max(0.0, q))

    def gumbel_range(self, qs):
        """Range of the Gumbel sigma(q): the tree's, or (q_normalization=node) the node's completed Q."""
        return (min(qs), max(qs)) if self.cfg.q_normalization == "node" else None

    def completed(self, node):
        qs, visits = [], []
        visit_sum = visit_max = 0
        prob_sum = weighted = 0.0
        for a, child in enumerate(node.children):
            n = child.visits if child is not None else 0
            visits.append(n)
            qs.append(None)
            if n > 0:
                qs[a] = child.q(self.discount)
                p = max(node.priors[a], TINY)
                prob_sum += p
                weighted += p * qs[a]
                visit_sum += n
                visit_max = max(visit_max, n)
        v_mix = node.raw
        if visit_sum > 0:
            v_mix = (v_mix + visit_sum * (weighted / prob_sum)) / (1.0 + visit_sum)
        return [v_mix if q is None else q for q in qs], visits, visit_sum, visit_max

    def sigma(self, node):
        qs, visits, visit_sum, visit_max = self.completed(node)
        scale = (self.cfg.c_visit + visit_max) * self.cfg.c_scale
        qrange = self.gumbel_range(qs)
        return [scale * self.normalize(q, qrange) for q in qs], visits, visit_sum

    def improved(self, node):
        sig, visits, visit_sum = self.sigma(node)
        x = [lg + s for lg, s in zip(node.logits, sig)]
        top = max(x)
        e = [math.exp(v - top) for v in x]
        total = 0.0
        for v in e:
            total += v
        return [v / total for v in e], visits, visit_sum, sig

    def root_scores(self, considered):
        sig, visits, _ = self.sigma(self.nodes[0])
        out = []
        for a, n in enumerate(visits):
            s = self.g[a] + self.nodes[0].logits[a] + sig[a]
            out.append(max(s, -1e9) if n == considered else -math.inf)
        return out

    def mean_q(self, node, is_root, parent_q):
        total, count = 0.0, 0
        for child in node.children:
            if child is not None and child.visits > 0:
                total += child.q(self.discount)
                count += 1
        return total / count if (is_root and count > 0) else (parent_q + total) / (count + 1)

    def select_puct(self, node, mq, sim, depth):
        c2, c1 = self.cfg.pb_c_base, self.cfg.pb_c_init
        total = float(node.visits - 1)
        pb_c = math.log((total + c2 + 1.0) / c2) + c1
        sqrt_total = math.sqrt(total)
        max_score, ties = -math.inf, []
        for a, child in enumerate(node.children):
            n = child.visits if child is not None else 0
            value = mq if n == 0 else child.q(self.discount)
            score = pb_c * (sqrt_total / (n + 1)) * node.priors[a] + self.normalize(value)
            if max_score < score:
                max_score, ties = score, [a]
            elif score >= max_score - 1e-6:
                ties.append(a)
        return ties[0] if len(ties) == 1 else ties[tie_index(self.seed, self.b, sim, depth, len(ties))]

    def select_interior(self, node):
        probs, visits, visit_sum, _ = self.improved(node)
        score = [p - n / (1.0 + visit_sum) for p, n in zip(probs, visits)]
        return score.index(max(score))

    def traverse(self, sim):
        """Returns (path, new_action or None when the path ends at a terminal node)."""
        node, path, parent_q = self.nodes[0], [self.nodes[0]], 0.0
        while len(path) - 1 < self.cfg.depth_bound:
            depth = len(path) - 1
            if not self.gumbel:
                parent_q = self.mean_q(node, depth == 0, parent_q)
                a = self.select_puct(node, parent_q, sim, depth)
            elif depth == 0:
                scores = self.root_scores(self.table[sim])
                a = scores.index(max(scores))
            else:
                a = self.select_interior(node)
            if node.children[a] is None:
                return path, a
            node = node.children[a]
            path.append(node)
        return path, None

    def backup(self, path, leaf_value):
        ret = leaf_value
        for node in reversed(path):
            node.value_sum += ret
            node.visits += 1
            ret = node.reward + self.discount * ret
        self.depth_sum += len(path) - 1
        self.depth_max = max(self.depth_max, len(path) - 1)
        qs = [n.q(self.discount) for n in self.nodes[1:] if n.visits > 0]
        self.qmin, self.qmax = (min(qs), max(qs)) if qs else (math.inf, -math.inf)


def reference_search(root_value, root_policy, discount, continuous, model, cfg, rng, *, train, temperature=1.0,
                     use_value_prefix=True):
    """Run the search per tree; returns a dict of numpy arrays named like ``SearchOutput``'s fields."""
    gumbel = cfg.variant == "gumbel"
    batch, n = len(root_value), cfg.num_simulations
    dims = len(root_policy[0]) // 2 if continuous else 0
    if continuous:
        k_root = cfg.num_sampled_actions
        k_int = cfg.num_sampled_actions_interior if gumbel else k_root
        widened = cfg.widened_count() if train else 0
        eps_root = rng.standard_normal((batch, k_root, dims), dtype=np.float32)
        if not train and cfg.eval_mean_action:
            eps_root[:, 0] = 0.0  # the mean action tanh(mu) is the first root candidate
    else:
        k_root = k_int = len(root_policy[0])
        widened = 0
    frac = cfg.root_exploration_fraction if (train and not gumbel) else 0.0
    dirichlet = rng.dirichlet([cfg.dirichlet_alpha] * k_root, size=batch) if frac > 0 else None
    root_noise = gumbel and train and (cfg.sampled_gumbel_noise or not continuous)
    g = rng.gumbel(size=(batch, k_root)) if root_noise else np.zeros((batch, k_root))
    seed = int(rng.integers(0, 2 ** 62))
    table = _considered_table(min(cfg.gumbel_top_m, k_root), n) if gumbel else None
    trees = []
    for b in range(batch):
        t = Tree(cfg, discount, [float(x) for x in g[b]], table, seed, b, gumbel)
        root = Node(0, None, 0, True, float(np.float32(root_value[b])), 0.0, 0.0)
        root.visits = 1
        if continuous:
            expand_continuous(root, root_policy[b], eps_root[b], k_root, widened, cfg.widen_std_scale)
            if (not gumbel or cfg.sampled_gumbel_importance) and widened > 0:
                importance_prior(root, root_policy[b], eps_root[b], k_root, widened, cfg.widen_std_scale)
        else:
            expand_discrete(root, [np.float32(x) for x in root_policy[b]])
        if frac > 0:
            root.priors = [p * (1.0 - frac) + float(d) * frac for p, d in zip(root.priors, dirichlet[b])]
            root.logits = [math.log(p) for p in root.priors]
        t.nodes.append(root)
        trees.append(t)
    for sim in range(n):
        eps = rng.standard_normal((batch, dims), dtype=np.float32) if continuous else None
        selections = [t.traverse(sim) for t in trees]
        outputs = []
        for b, (path, a) in enumerate(selections):
            if a is None:
                action = np.zeros(dims, np.float32) if continuous else 0
                outputs.append(model(b, path[-1].index, action, sim + 1))
            else:
                parent = path[-1]
                if continuous and parent.index != 0:
                    draw_action(parent, a, eps[b])
                action = np.asarray(parent.actions[a], np.float32) if continuous else a
                outputs.append(model(b, parent.index, action, sim + 1))
        for b, ((path, a), t) in enumerate(zip(selections, trees)):
            value, vp, policy = outputs[b]
            if a is None:
                t.backup(path, path[-1].raw)
                continue
            parent = path[-1]
            vp = float(np.float32(vp))
            depth = parent.depth + 1
            reset = (not use_value_prefix) or depth % cfg.value_prefix_horizon == 0
            reward = vp if parent.reset else vp - parent.value_prefix
            child = Node(sim + 1, parent, depth, reset, float(np.float32(value)), vp, reward)
            if continuous:
                expand_interior_continuous(child, policy, k_int)
            else:
                expand_discrete(child, [np.float32(x) for x in policy])
            parent.children[a] = child
            t.nodes.append(child)
            t.backup(path + [child], child.raw)
    uniforms = rng.random(batch) if (train and not gumbel) else np.zeros(batch)
    return _finish(trees, n, train, temperature, uniforms, continuous, gumbel)


def _finish(trees, n, train, temperature, uniforms, continuous, gumbel):
    res = {k: [] for k in ("action_index", "visit_counts", "policy", "root_value", "sve_value", "q_values",
                           "prior", "max_depth", "mean_depth", "sampled_actions")}
    for b, t in enumerate(trees):
        root = t.nodes[0]
        qs, visits, visit_sum, visit_max = t.completed(root)
        if gumbel:
            policy = t.improved(root)[0]
            scores = t.root_scores(visit_max)
            index = scores.index(max(scores))
        else:
            policy = [v / visit_sum for v in visits]
            index = _visit_action(visits, train, temperature, uniforms[b])
        res["action_index"].append(index)
        res["visit_counts"].append(visits)
        res["policy"].append(policy)
        res["root_value"].append(root.value_sum / root.visits)
        res["sve_value"].append(root.value_sum / n)
        res["q_values"].append(qs)
        res["prior"].append(root.priors)
        res["max_depth"].append(t.depth_max)
        res["mean_depth"].append(t.depth_sum / n)
        res["sampled_actions"].append(root.actions)
    out = {k: np.asarray(v) for k, v in res.items()}
    for k in ("policy", "root_value", "sve_value", "q_values", "prior", "mean_depth", "sampled_actions"):
        out[k] = out[k].astype(np.float32)
    if not continuous:
        out["sampled_actions"] = None
    return out


def _visit_action(visits, train, temperature, u):
    best = visits.index(max(visits))
    if not train:
        return best
    top = math.log(visits[best]) / temperature
    weights = [math.exp(math.log(v) / temperature - top) if v > 0 else 0.0 for v in visits]
    total = 0.0
    for w in weights:
        total += w
    acc, last = 0.0, best
    for a, w in enumerate(weights):
        if visits[a] > 0:
            acc += w
            last = a
            if u * total < acc:
                return a
    return last


def _considered_table(m, n):
    """Sequential halving written out phase by phase (docs/REFERENCES.md §3)."""
    if m == 1:
        return list(range(n))
    phases = math.ceil(math.log2(m))
    seq, visits, remaining = [], [0] * m, m
    while len(seq) < n:
        for _ in range(max(1, n // (phases * remaining))):
            seq.extend(visits[:remaining])
            visits[:remaining] = [v + 1 for v in visits[:remaining]]
        remaining = max(2, remaining // 2)
    return seq[:n]
