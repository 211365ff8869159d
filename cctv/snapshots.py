"""What an alert saw, beside the events file: `<output>.snapshots/alert0001-frame00310.jpg` (the frame with
the people it names boxed) and `alert0001-track7-face.jpg` (each one's best face crop so far), each
written under a temporary name and renamed."""
from pathlib import Path

import cv2
import numpy as np

from .annotate import RED, draw_track_box
from .atomic import write_bytes


def snapshots_dir(output_path):
    return Path(f"{output_path}.snapshots")


class SnapshotSaver:
    def __init__(self, folder, relative_to):
        self.folder, self.relative_to = Path(folder), Path(relative_to)

    def save(self, alert_number, frame_index, frame, people):
        """Writes the snapshots of one alert about `people` (each with track_id, last_box, best_crop);
        returns their paths relative to the events file's folder."""
        marked = frame.copy()
        for person in people:
            draw_track_box(marked, person.last_box, f"#{person.track_id}", RED)
        paths = [self._write(f"alert{alert_number:04d}-frame{frame_index:05d}.jpg", marked)]
        for person in people:
            if person.best_crop is not None and person.best_crop.size:
                paths.append(self._write(f"alert{alert_number:04d}-track{person.track_id}-face.jpg",
                                         _enlarge(person.best_crop)))
        return [p.relative_to(self.relative_to).as_posix() for p in paths]

    def _write(self, name, rgb):
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise OSError(f"could not encode {name}")
        path = self.folder / name
        write_bytes(path, data.tobytes())
        return path


def _enlarge(crop, min_side=96):
    """CCTV faces are 15-40 px: scale a crop up so that a person can look at it."""
    side = min(crop.shape[:2])
    if side >= min_side:
        return crop
    scale = int(np.ceil(min_side / max(side, 1)))
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
