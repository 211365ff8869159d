"""Reading the `name#N` frames that the reference file names (frame N of a GIF or video)."""
import cv2


def read_frame(shared_dir, name):
    """RGB uint8 frame for 'path' or 'path#N', relative to shared/data."""
    path, _, index = name.partition("#")
    full = str(shared_dir / "data" / path)
    if not index:
        return cv2.cvtColor(cv2.imread(full), cv2.COLOR_BGR2RGB)
    cap = cv2.VideoCapture(full)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if not ok:
            raise ValueError(f"{full}: no frame {index}")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
