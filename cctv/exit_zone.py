"""`--exit_zone`: where people leave. Alerts name only people heading out.

`x1,y1,x2,y2,x3,y3,...` (3 or more points, pixels) is a polygon: a person is heading out once their face
is inside it. `x1,y1,x2,y2` (2 points) is a line to cross: heading out once a person first seen on one
side is on its exit side, the right-hand side walking from the first point to the second (image
coordinates, y down: for a line drawn left to right, below it).
"""
import cv2
import numpy as np

from .errors import UserError


class ExitZone:
    def __init__(self, points):
        self.points = np.asarray(points, np.float32).reshape(-1, 2)
        self.is_line = len(self.points) == 2

    def heading_out(self, first_centre, centre):
        if not self.is_line:
            return cv2.pointPolygonTest(self.points, (float(centre[0]), float(centre[1])), False) >= 0
        return self._side(first_centre) <= 0 < self._side(centre)

    def _side(self, point):
        (x1, y1), (x2, y2) = self.points
        return (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1)


def parse_exit_zone(spec, width=None, height=None):
    """The zone of a `--exit_zone` value (None for none); UserError names the problem."""
    if spec is None or str(spec).strip() == "":
        return None
    flag = f"--exit_zone {spec}"
    try:
        values = [float(v) for v in str(spec).replace(" ", "").split(",")]
    except ValueError:
        raise UserError(f"{flag}: give pixel coordinates x1,y1,x2,y2[,x3,y3,...] separated by commas") from None
    if len(values) % 2 or len(values) < 4:
        raise UserError(f"{flag}: needs pairs of x,y: 2 points for a line or 3 and more for a polygon, "
                        f"got {len(values)} numbers")
    if not all(np.isfinite(values)) or min(values) < 0:
        raise UserError(f"{flag}: coordinates must be pixel positions (0 or more)")
    points = np.array(values, np.float32).reshape(-1, 2)
    if len(points) == 2 and np.allclose(points[0], points[1]):
        raise UserError(f"{flag}: the line's two points are the same")
    if len(points) > 2 and abs(cv2.contourArea(points)) < 1:
        raise UserError(f"{flag}: the polygon has no area")
    if width and height and (points[:, 0].max() > width or points[:, 1].max() > height):
        raise UserError(f"{flag}: outside the {width}x{height} frame")
    return ExitZone(points)
