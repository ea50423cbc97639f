"""AffectGPT inference: checkpoints -> answers on test datasets (runner.py) or one raw video
(single_video.py); inference_hybird.py is the command line."""
