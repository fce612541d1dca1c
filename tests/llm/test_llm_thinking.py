"""strip_thinking: reasoning traces never reach the parsers."""

from utilabel.llm import strip_thinking


def test_closed_blocks_removed_anywhere():
    assert strip_thinking("<think>passage 2 looks good</think>\nMy selection:[[2]]") == "My selection:[[2]]"
    assert strip_thinking("A <think>x</think>B<think>y\nz</think> C") == "A B C"


def test_unterminated_leading_block_leaves_nothing():
    # the budget ran out mid-thought: the reasoning must not be parsed as an answer
    assert strip_thinking("<think>[1] seems relevant, [3] too") == ""
    assert strip_thinking("  <THINK>\n[1]") == ""


def test_dangling_close_tag_from_template_opened_thinking():
    # DeepSeek-R1 / Qwen3 templates put <think> into the prompt; the output starts inside the block
    assert strip_thinking("the question asks about X\n</think>\n\n[2] > [1]") == "[2] > [1]"


def test_text_without_tags_is_unchanged_but_trimmed():
    assert strip_thinking("  My selection:[[1],[4]]\n") == "My selection:[[1],[4]]"
    assert strip_thinking("") == ""


def test_thinking_tag_variant():
    assert strip_thinking("<thinking>hmm</thinking>yes") == "yes"
