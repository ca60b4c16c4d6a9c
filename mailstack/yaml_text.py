"""Changes to a YAML file that keep every other byte of it.

A value is found with PyYAML's composer (the parser the model reads the data with)
and the change is spliced into the text at that node's marks, so comments, blank
lines, quoting and alignment outside it stay as the operator wrote them. (A
round-trip dump, ruamel.yaml's, realigns columns such as inventory/lab/mail.yml's
hosts, and leaves a removed entry's comment above the next one.)
"""
import json
import re

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode


class Unsupported(Exception):
    """A shape this module does not edit (the operator changes it by hand)."""


def scalar(value):
    """`value` as a YAML scalar: plain when it reads back as the same string, else
    double-quoted (JSON's escapes are YAML's)."""
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9@._+/-]*", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def flow_list(values):
    return "[" + ", ".join(scalar(v) for v in values) + "]"


def flow(value):
    """A value read from YAML (a mapping, a list, a scalar), written back in flow
    style: what an entry said, on one line (an offboarded mailbox's settings)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    return scalar(str(value))


def value_of(mapping, key):
    """The value node under `key` of a mapping node, or None."""
    for k, v in mapping.value if isinstance(mapping, MappingNode) else ():
        if isinstance(k, ScalarNode) and k.value == key:
            return v
    return None


def text_of(node):
    """A scalar's string, or a sequence's strings (the shapes `to:` may have)."""
    if isinstance(node, SequenceNode):
        return [n.value for n in node.value if isinstance(n, ScalarNode)]
    return node.value if isinstance(node, ScalarNode) else None


class Text:
    """One YAML text and the edits to it, applied together by apply()."""

    def __init__(self, text):
        self.text = text
        self.root = yaml.compose(text)
        self.edits = []

    def apply(self):
        text = self.text
        # From the end, so earlier offsets stay right; at one offset, in the order made.
        for start, end, new, _ in sorted(self.edits, key=lambda e: (e[0], e[3]), reverse=True):
            text = text[:start] + new + text[end:]
        return text

    def _edit(self, start, end, new):
        self.edits.append((start, end, new, len(self.edits)))

    # --- positions ---
    def _line_start(self, i):
        return self.text.rfind("\n", 0, i) + 1

    def _line_end(self, i):
        """Just after the newline of the line holding offset i."""
        n = self.text.find("\n", i)
        return len(self.text) if n < 0 else n + 1

    def _last(self, node):
        """Offset just after a node's last character (a block collection's marks
        reach into what follows: blank lines, the next comment)."""
        if isinstance(node, ScalarNode) or node.flow_style:
            return node.end_mark.index
        if not node.value:
            return node.start_mark.index
        last = node.value[-1]
        return max(self._last(n) for n in (last if isinstance(node, MappingNode) else (last,)))

    def _insert_after_line(self, i, lines):
        """Insert whole lines after the line holding offset i (which may lack its newline)."""
        end = self._line_end(i)
        self._edit(end, end, ("" if self.text[end - 1:end] == "\n" else "\n") + lines)

    def _column(self, i):
        return i - self._line_start(i)

    def _block(self, node, what):
        if node.flow_style:
            raise Unsupported(f"{what} is written in flow style: change it by hand")

    # --- sequences of mappings (mailboxes:, aliases:) ---
    def items(self, key):
        """The item nodes of the top-level sequence `key` ([] if absent or empty)."""
        node = value_of(self.root, key)
        return node.value if isinstance(node, SequenceNode) else []

    def _dash(self, item):
        return self.text.rfind("-", 0, item.start_mark.index)

    def _item_start(self, items, i):
        """Where item i's lines begin: its dash's line, or the comment lines right
        above it that describe it (not above the first item: a section's comment)."""
        start = self._line_start(self._dash(items[i]))
        indent = self._column(self._dash(items[i]))
        while i > 0 and start > 0:
            above = self._line_start(start - 1)
            line = self.text[above:start]
            if not (line.lstrip().startswith("#") and self._column(above + len(line) - len(line.lstrip())) == indent):
                break
            start = above
        return start

    def remove_item(self, key, i):
        items = self.items(key)
        self._block(value_of(self.root, key), key)
        self._edit(self._item_start(items, i), self._line_end(self._last(items[i]) - 1), "")

    def add_item(self, key, pairs, after=None):
        """A new block mapping item of the sequence `key`, after item `after` (else
        last); pairs: [(key, YAML text of the value)]. The sequence is made if absent."""
        node = value_of(self.root, key)
        if isinstance(node, SequenceNode) and node.value:
            self._block(node, key)
            items = node.value
            anchor = items[len(items) - 1 if after is None else after]
            indent = " " * self._column(self._dash(anchor))
            self._insert_after_line(self._last(anchor) - 1, self._item_text(indent, pairs))
            return
        if node is not None and not (isinstance(node, ScalarNode) and node.tag.endswith(":null")
                                     or isinstance(node, SequenceNode)):
            raise Unsupported(f"{key} is not a list: change it by hand")
        # No items yet: indent as the file's domains are.
        domains = value_of(self.root, "domains")
        block = isinstance(domains, SequenceNode) and domains.value and not domains.flow_style
        indent = " " * (self._column(self._dash(domains.value[0])) if block else 2)
        lines = self._item_text(indent, pairs)
        if node is None:
            end = len(self.text)
            gap = "" if self.text.endswith("\n") or not self.text else "\n"
            self._edit(end, end, f"{gap}\n{key}:\n{lines}")
        else:
            # `key:`, `key: ~` or `key: []`: the value becomes the list.
            key_node = next(k for k, v in self.root.value if v is node)
            colon = self.text.index(":", key_node.end_mark.index) + 1
            self._edit(colon, self._line_end(max(self._last(node), colon)), "\n" + lines)

    @staticmethod
    def _item_text(indent, pairs):
        return "".join(f"{indent}{'- ' if n == 0 else '  '}{k}: {v}\n" for n, (k, v) in enumerate(pairs))

    # --- keys of a mapping (an item, or a hashes file's top level) ---
    def set_key(self, mapping, key, value):
        """`key: value` (value as YAML text) in a mapping node: the value replaced,
        or the key added after the mapping's last one."""
        for k, v in mapping.value:
            if k.value == key:
                colon = self.text.index(":", k.end_mark.index) + 1
                self._edit(colon, max(self._last(v), colon), " " + value)
                return
        if mapping.flow_style:
            close = mapping.end_mark.index - 1
            self._edit(close, close, f", {key}: {value}" if mapping.value else f"{key}: {value}")
            return
        indent = " " * self._column(mapping.value[0][0].start_mark.index)
        self._insert_after_line(self._last(mapping) - 1, f"{indent}{key}: {value}\n")

    def set_top(self, key, value):
        """A top-level `key: value` (a hashes file's address: hash)."""
        if self.root is None:
            gap = "" if self.text.endswith("\n") or not self.text else "\n"
            self._edit(len(self.text), len(self.text), f"{gap}{key}: {value}\n")
        elif isinstance(self.root, MappingNode) and self.root.value:
            self.set_key(self.root, key, value)
        else:
            raise Unsupported("the file is not a mapping of keys: change it by hand")

    def remove_top(self, key, blank_above=False):
        """Remove a top-level key and its value (block style); blank_above: with the
        blank line that set it apart (a section of its own)."""
        if not isinstance(self.root, MappingNode):
            return
        self._block(self.root, "the file")
        for k, v in self.root.value:
            if k.value == key:
                start = self._line_start(k.start_mark.index)
                if blank_above and start > 0 and self.text[self._line_start(start - 1):start] == "\n":
                    start -= 1
                self._edit(start, self._line_end(self._last(v) - 1), "")
