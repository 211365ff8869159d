"""Class names from any labeling tool -> our two classes, 'protected' and 'unprotected'.

Names are compared case-insensitively with spaces and dashes read as underscores ('With Mask' ==
'with_mask'). Users extend or override the table (`--class_map helmet=protected,bare=unprotected`);
mapping a name to 'ignore' drops its boxes (counted in the load report)."""
import json
from pathlib import Path

from ..errors import UserError

PROTECTED, UNPROTECTED, IGNORE = "protected", "unprotected", "ignore"
CLASSES = (PROTECTED, UNPROTECTED)

DEFAULT_CLASS_MAP = {
    **{name: PROTECTED for name in (
        "protected", "with_mask", "mask", "masked", "mask_on", "face_mask", "facemask",
        "mask_worn", "wearing_mask")},
    **{name: UNPROTECTED for name in (
        "unprotected", "without_mask", "no_mask", "nomask", "unmasked", "no_face_mask", "mask_off",
        "mask_weared_incorrect", "mask_worn_incorrectly", "incorrect_mask", "improperly_masked",
        "not_wearing_mask")},
}


def normalize(name) -> str:
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def build_class_map(overrides=None) -> dict:
    """DEFAULT_CLASS_MAP with `overrides` ({name: 'protected'|'unprotected'|'ignore'}) laid over it."""
    table = dict(DEFAULT_CLASS_MAP)
    for name, target in (overrides or {}).items():
        target = normalize(target)
        if target not in (PROTECTED, UNPROTECTED, IGNORE):
            raise UserError(f"class map: '{name}' maps to '{target}'; use protected, unprotected or ignore")
        table[normalize(name)] = target
    return table


def parse_class_map(text) -> dict:
    """A --class_map flag: 'name=protected,other=unprotected' or the path of a JSON object like it."""
    if not text:
        return {}
    path = Path(text)
    if path.suffix.lower() == ".json":
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: class map file not found") from None
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable JSON class map ({e})") from None
        if not isinstance(table, dict):
            raise UserError(f"{path}: a class map is a JSON object {{\"name\": \"protected\"}}")
        return {str(k): str(v) for k, v in table.items()}
    table = {}
    for pair in text.split(","):
        name, sep, target = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--class_map: '{pair}' is not name=protected|unprotected|ignore")
        table[name.strip()] = target.strip()
    return table


def map_class(name, table, source) -> str:
    """Our class for a label's class name ('ignore' possible); an unknown name is a UserError."""
    target = table.get(normalize(name))
    if target is None:
        known = ", ".join(sorted(table))
        raise UserError(
            f"{source}: unknown class '{name}'. Known classes: {known}. "
            f"Map it with --class_map '{name}=protected' (or unprotected, or ignore)")
    return target


CLASS_MAP_HELP = ("label class names beyond the known ones: 'helmet=protected,bare=unprotected,hat=ignore', or a "
                  "JSON file of the same")


def add_class_map_argument(parser):
    """--class_map, the same in every script that reads labels (the unknown-class error names it)."""
    parser.add_argument("--class_map", default=None, help=CLASS_MAP_HELP)


def add_labeled_frames_arguments(parser):
    """The labeled frames a script scores or trains MTCNN on: --labels_dir (required), --metadata_dir, --images_dir
    and --class_map, the same in finetune_mtcnn.py and evaluate_models.py."""
    parser.add_argument("--labels_dir", required=True,
                        help="labels: a Suite export's labels/ folder, an export folder or .zip, a COCO .json, "
                             "VOC or YOLO folder")
    parser.add_argument("--metadata_dir", default=None,
                        help="the Suite export's meta/<dataset> folder (for layouts that need one)")
    parser.add_argument("--images_dir", default=None, help="folder with the labeled images")
    add_class_map_argument(parser)
