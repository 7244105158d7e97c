"""The chain rule for the weight under the cursor, written out with this step's numbers.

For a kernel weight ``w[i, j]``: dL/dw = Σ_b a_prev[b, i] · dL/dz[b, j], with
dL/dz = dL/da · f′(z). For a bias ``b[j]``: dL/db = Σ_b dL/dz[b, j]. The sum is
checked against the gradient the backward pass produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from backprop_tui.core import LayerView
from backprop_tui.core.maths.activations import derivative_text, get_activation
from numpy.typing import NDArray
from rich.text import Text

from ..layer_rules import Rule, rule_of
from ..render import fit, num, wrap
from ..session import RECORDED
from ..torch_rules import conv2d_rule, conv_index, linear_rule
from .base import Pane
from .gradients import no_matrix


def not_dense(spec: LayerView, shape: tuple[int, ...]) -> str:
    return (
        f"the chain rule is written out for dense layers, z = a_prev·W + b on (batch, "
        f"features); {spec.name} is a {spec.kind} with output {tuple(shape)}: its gradient "
        "is in the gradients pane"
    )


Column = tuple[str, NDArray[Any], int]  # (header, values per sample, priority: lower stays)
PASSES = {  # how dL/da passes through a layer without weights
    "max_pooling2d": "Max pooling has no weights: each window hands its dL/dz to the input "
    "that won it (the largest), and 0 to the others.",
    "average_pooling2d": "Average pooling has no weights: each window shares its dL/dz equally "
    "among the inputs it averaged.",
    "flatten": "Flatten has no weights: dL/da is dL/dz put back in the input's shape.",
    "dropout": "Dropout has no weights: dL/da = dL/dz · mask, the same mask as the forward "
    "pass (0 where an input was dropped, 1/(1 − rate) where kept).",
}


class ChainRulePane(Pane):
    TITLE = "chain rule"

    def summary(self, width: int) -> Text:
        spec = self.session.spec
        if spec.total_params is not None and spec.kernel is None:  # a torch module
            what = (
                "its chain rule at the largest |dL/dW|"
                if spec.kind == "Conv2d"
                else "its backward as autograd ran it (grad_fn chain)"
            )
            return Text(fit(f"{spec.name} ({spec.kind}): {what}", width), no_wrap=True)
        if spec.kernel is None:  # no weight matrix to point a cursor into
            return Text(fit(no_matrix(self.session.spec), width), no_wrap=True)
        param, index = self.session.cursor_param()
        grad = self._grad(param, index, self.session.view.layer_arrays(self.session.layer))
        text = f"dL/d{param}{list(index)} = {num(grad) if grad is not None else 'not yet'}"
        return Text(fit(text, width), no_wrap=True)

    def _grad(self, param: str, index: tuple[int, ...], arrays: Mapping[str, Any]) -> float | None:
        return float(arrays[param][index]) if param in arrays else None

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        dbg = s.view
        spec = s.spec
        if spec.total_params is not None:  # a module of the user's own torch model
            return self._torch(width, height)
        if spec.kernel is None:
            text = PASSES.get(spec.kind, no_matrix(spec))
            return wrap(text, width, "italic")
        param, index = s.cursor_param()
        arrays = dbg.layer_arrays(s.layer)
        if spec.kind in ("conv2d", "batch_normalization") and dbg.kind != "attached":
            return self._layer_rule(param, index, arrays, width, height)
        is_bias = param.endswith(".bias")
        j = index[-1]
        i = index[0]
        value = float(dbg.params[param][index])
        grad = self._grad(param, index, arrays)
        where = f"[{j}]" if is_bias else f"[{i},{j}]"
        head = f"{param}{where} = {num(value)}"
        if grad is not None:
            head += f" · dL/d{'b' if is_bias else 'w'} = {num(grad)}"
        lines = [Text(fit(head, width), style="bold", no_wrap=True)]
        if is_bias:
            formula = f"dL/db{where} = Σ_b dL/dz[b,{j}]"
        else:
            formula = f"dL/dw{where} = Σ_b a_prev[b,{i}] · dL/dz[b,{j}]"
        penalty = spec.penalties.get(param)
        if penalty is not None:  # the weight penalty's own part, added to the data part
            formula += f" + {penalty[1]}"
        lines.append(Text(fit(formula, width), no_wrap=True))
        batch = len(arrays["z"]) if "z" in arrays else 0
        room = height - len(lines) - 1  # below: the table, then the sum
        if room - 1 >= batch + 1 or room >= 6:  # the f′ rule, unless it costs a small table a row
            lines.append(Text(fit(self._dz_rule(), width), style="dim", no_wrap=True))
        if "z" not in arrays:
            if s.read_only:
                return lines + wrap(
                    RECORDED.format(what="the activations it needs"), width, "italic"
                )
            hint = f"the forward pass has not reached {spec.name} yet: step on (space or l)"
            return [*lines, Text(fit(hint, width), style="italic", no_wrap=True)]
        if not self._dense(arrays):
            return [*lines[:1], *wrap(not_dense(spec, arrays["z"].shape), width, "italic")]
        columns = self._columns(arrays, i, j, is_bias)
        # the sum (or a hint) takes the last line; with a penalty, maybe two
        room = height - len(lines) - (2 if param in spec.penalties else 1)
        lines += self._table(columns, width, room)
        if "dL_dz" in arrays:
            lines += self._sum_lines(arrays, param, index, is_bias, grad, width)
        else:
            hint = f"dL/dz of {spec.name} comes with the backward pass: step on (space or l)"
            lines.append(Text(fit(hint, width), style="italic", no_wrap=True))
        return lines

    def _torch(self, width: int, height: int) -> list[Text]:
        """A torch module: nn.Linear's rule at the cursor and nn.Conv2d's at its largest
        gradient, in torch's layout (torch_rules.py); any other module's grad_fn chain."""
        s = self.session
        spec = s.spec
        arrays = s.view.layer_arrays(s.layer)
        if spec.kind == "Linear" and spec.kernel is not None:
            param, index = s.cursor_param()
            rule = linear_rule(spec, param, index, arrays)
            if rule is not None:
                return self._layer_rule(param, index, arrays, width, height, rule)
        if spec.kind == "Conv2d" and spec.param_names and spec.param_names[0] in arrays:
            weight = spec.param_names[0]
            at = conv_index(np.asarray(arrays[weight]))
            rule = conv2d_rule(spec, at, arrays)
            if rule is not None:
                return self._layer_rule(weight, at, arrays, width, height, rule)
        if "grad_fn" not in arrays:
            hint = (
                f"{spec.name} ({spec.kind}): its backward shows once the backward pass reaches "
                "it (space or l)"
            )
            return wrap(hint, width, "italic")
        head = f"{spec.name} ({spec.kind}): the backward as autograd ran it (grad_fn chain)"
        lines = [Text(fit(head, width), style="bold", no_wrap=True)]
        chain = [str(line) for line in np.asarray(arrays["grad_fn"]).tolist()]
        for k, line in enumerate(chain):
            left = height - len(lines)
            if left <= 0:
                break
            # Wrapped under its own indent where the rows allow (the rest of the chain
            # still has one row a line); cut only where they do not.
            indent = len(line) - len(line.lstrip())
            pieces = wrap(line.strip(), max(width - indent - 2, 8))
            if len(pieces) > 1 and len(pieces) <= left - (len(chain) - k - 1):
                pad = " " * indent
                lines += [
                    Text(pad + ("" if j == 0 else "  ")) + piece for j, piece in enumerate(pieces)
                ]
            else:
                lines.append(Text(fit(line, width), no_wrap=True))
        return lines

    def _dense(self, arrays: Mapping[str, Any]) -> bool:
        """Whether the layer computes z = a_prev·W + b on (batch, features) arrays, the
        formula this pane writes out. An attached torch model's Linear computes
        z = a_prev·Wᵀ + b (its weight is out × in) and other modules other things."""
        s = self.session
        if s.view.kind == "attached":
            return False
        a_prev, z = arrays.get("a_prev"), arrays["z"]
        return a_prev is not None and a_prev.ndim == 2 and z.ndim == 2

    def _layer_rule(
        self,
        param: str,
        index: tuple[int, ...],
        arrays: Mapping[str, Any],
        width: int,
        height: int,
        rule: Rule | None = None,
    ) -> list[Text]:
        """A conv2d or batch normalization parameter: its sum over the batch and positions
        (or ``rule``, a torch module's)."""
        s = self.session
        value = float(s.view.params[param][index])
        grad = self._grad(param, index, arrays)
        head = f"{param}{list(index)} = {num(value)}"
        if grad is not None:
            head += f" · dL/d{param.split('.')[-1]} = {num(grad)}"
        lines = [Text(fit(head, width), style="bold", no_wrap=True)]
        if rule is None:
            rule = rule_of(s.spec, param, index, arrays)
        if rule is None:
            if "z" not in arrays and s.read_only:
                return lines + wrap(RECORDED.format(what="the activations it needs"), width)
            hint = f"dL/dz of {s.spec.name} comes with the backward pass: step on (space or l)"
            return [*lines, Text(fit(hint, width), style="italic", no_wrap=True)]
        formula = list(rule.formula)
        penalty = s.spec.penalties.get(param)
        if penalty is not None and formula:
            formula[0] += f" + {penalty[1]}"
        for line in formula:  # wrapped, not cut: the table below gives up rows instead
            lines += wrap(line, width) or [Text("")]
        if s.spec.activation is not None and height - len(lines) > 6:
            lines.append(Text(fit(self._dz_rule(), width), style="dim", no_wrap=True))
        if rule.example and height - len(lines) > 5:
            lines.append(Text(fit(rule.example, width), style="dim", no_wrap=True))
        columns: list[Column] = [(h, v, k) for k, (h, v) in enumerate(rule.columns)]
        lines += self._table(columns, width, height - len(lines) - (2 if penalty else 1))
        text = f"Σ = {num(rule.total)} ({rule.terms} terms)"
        text, total = self._add_penalty(text, rule.total, param, index, arrays)
        return [*lines, *self._verdict(text, total, grad, width)]

    def _add_penalty(
        self,
        text: str,
        total: float,
        param: str,
        index: tuple[int, ...],
        arrays: Mapping[str, Any],
    ) -> tuple[str, float]:
        """The sum's text and value with the weight penalty's part added, where there is one."""
        key = f"{param}.penalty"
        if key not in arrays:
            return text, total
        part = float(arrays[key][index])
        return f"{text} + penalty {num(part)} = {num(total + part)}", total + part

    def _dz_rule(self) -> str:
        spec = self.session.spec
        s = self.session
        last = s.layer == len(s.view.layers) - 1
        if last and s.view.fused_output:
            return f"dL/dz = (a − y)/B: {spec.activation} fused with {s.view.loss_name}"
        if spec.activation == "softmax":
            return "dL/dz = a·(dL/da − Σ_k dL/da·a)  (softmax mixes a sample's units)"
        return f"dL/dz = dL/da · f′(z),  f′(z) = {derivative_text(spec.activation or 'linear')}  ({spec.activation})"

    def _columns(self, arrays: Mapping[str, Any], i: int, j: int, is_bias: bool) -> list[Column]:
        columns: list[Column] = []
        if not is_bias:
            columns.append((f"a_prev[b,{i}]", arrays["a_prev"][:, i], 0))
        columns.append((f"z[b,{j}]", arrays["z"][:, j], 4))
        if "dL_da" in arrays:
            columns.append((f"dL/da[b,{j}]", arrays["dL_da"][:, j], 2))
        activation = get_activation(self.session.spec.activation or "linear")
        if activation.derivative is not None:
            z, a = arrays["z"][:, [j]], arrays["a"][:, [j]]
            columns.append(("f′(z)", activation.derivative(z, a)[:, 0], 3))
        if "dL_dz" in arrays:
            columns.append((f"dL/dz[b,{j}]", arrays["dL_dz"][:, j], 1))
            if not is_bias:
                product = arrays["a_prev"][:, i] * arrays["dL_dz"][:, j]
                columns.append(("a_prev·dL/dz", product, 0))
        return columns

    def _table(self, columns: list[Column], width: int, room: int) -> list[Text]:
        if room < 2:
            return []
        batch = len(columns[0][1])
        shown = columns
        while shown:
            cells = [[num(float(v)) for v in values[: room - 1]] for _, values, _ in shown]
            widths = [
                max([len(h)] + [len(c) for c in col])
                for (h, _, _), col in zip(shown, cells, strict=True)
            ]
            total = 4 + sum(w + 2 for w in widths)
            if total <= width or len(shown) == 1:
                break
            worst = max(p for _, _, p in shown)
            drop = max(k for k, (_, _, p) in enumerate(shown) if p == worst)
            shown = shown[:drop] + shown[drop + 1 :]
        head = Text("   b", style="dim", no_wrap=True)
        for (header, _, _), w in zip(shown, widths, strict=True):
            head.append("  " + header.rjust(w), style="dim")
        lines = [head]
        visible = min(batch, room - 1 if batch <= room - 1 else room - 2)
        for b in range(visible):
            line = Text(f"{b:>4}", style="dim", no_wrap=True)
            for col, w in zip(cells, widths, strict=True):
                line.append("  " + col[b].rjust(w))
            lines.append(line)
        if visible < batch:
            lines.append(Text(f"   … {batch - visible} more samples in the sum", style="dim"))
        return [line if line.cell_len <= width else line[:width] for line in lines]

    def _sum_lines(
        self,
        arrays: Mapping[str, Any],
        param: str,
        index: tuple[int, ...],
        is_bias: bool,
        grad: float | None,
        width: int,
    ) -> list[Text]:
        i, j = index[0], index[-1]
        dz = arrays["dL_dz"][:, j]
        total = float(dz.sum() if is_bias else np.dot(arrays["a_prev"][:, i], dz))
        text, total = self._add_penalty(f"Σ = {num(total)}", total, param, index, arrays)
        return self._verdict(text, total, grad, width)

    @staticmethod
    def _verdict(text: str, total: float, grad: float | None, width: int) -> list[Text]:
        """The sum and whether backprop agrees: one line, or two where one is too narrow."""
        if grad is None:
            return [Text(fit(text, width), style="bold", no_wrap=True)]
        agrees = np.isclose(total, grad, rtol=1e-6, atol=1e-12)
        verdict = f"backprop gave {num(grad)} {'✓ same' if agrees else '✗ differs'}"
        if len(text) + 2 + len(verdict) <= width:
            return [Text(f"{text}  {verdict}", style="bold", no_wrap=True)]
        return [Text(fit(part, width), style="bold", no_wrap=True) for part in (text, verdict)]
