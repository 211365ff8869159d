"""What the scripts share in their command lines: a --help that shows each default once, and only where it
says something."""
import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, except: no default for on/off flags (`--no_augment` would print
    'default: True', the value of what it turns off), none when it is None or empty (nothing to show), and
    none when the help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.nargs == 0 or action.default in (None, [], (), "") or action.default is argparse.SUPPRESS
                or "default" in text.lower()):
            return text
        return super()._get_help_string(action)


def make_parser(doc) -> argparse.ArgumentParser:
    """The scripts' parser: the first paragraph of the module docstring as its description."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=HelpFormatter)
