"""Face tracks: ByteTrack (Roboflow's `trackers` package, the home of supervision's ByteTrack since
supervision 0.30) gives each face box a track id that survives missed detections.

CCTV faces are small (15-25 px) and move about their own width between frames at 7 fps, so consecutive
boxes barely overlap: boxes are matched with buffered IoU (each box grown by `buffer_ratio` of its size
on every side, the C-BIoU paper's remedy for fast small objects) on top of the Kalman prediction. Weak
boxes (MTCNN probability under `high_prob`) only extend tracks that exist, ByteTrack's second stage; they
never start one.
"""
import numpy as np

UNTRACKED = -1


class FaceTracker:
    """`tracker.update(boxes, probs) -> track ids` (int, aligned with `boxes`; -1 = not (yet) tracked).
    A track needs `min_frames` consecutive detections before it gets an id, and is dropped after `lost_s`
    seconds without one."""

    def __init__(self, fps, lost_s=2.0, high_prob=0.6, buffer_ratio=0.5, min_iou=0.05, min_frames=2):
        import supervision as sv
        from trackers import ByteTrackTracker
        from trackers.utils.iou import BIoU

        self._detections = sv.Detections
        fps = float(fps) if fps and fps > 0 else 25.0
        # trackers counts the lost buffer in frames of a 30 fps video and rescales it to `frame_rate`
        self.tracker = ByteTrackTracker(lost_track_buffer=max(1, round(lost_s * 30)), frame_rate=fps,
                                        track_activation_threshold=high_prob, high_conf_det_threshold=high_prob,
                                        minimum_iou_threshold=min_iou, minimum_consecutive_frames=min_frames,
                                        iou=BIoU(buffer_ratio=buffer_ratio))

    def update(self, boxes, probs):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        detections = self._detections(xyxy=boxes, confidence=np.asarray(probs, np.float32).reshape(-1),
                                      data={"index": np.arange(len(boxes))})
        tracked = self.tracker.update(detections)
        ids = np.full(len(boxes), UNTRACKED, dtype=int)
        if len(tracked):  # ids from 1 (people read them); trackers counts from 0
            ids[tracked.data["index"]] = np.where(tracked.tracker_id >= 0, tracked.tracker_id + 1, UNTRACKED)
        return ids
