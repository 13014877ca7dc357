"""The models run on frames: person boxes (:mod:`.detector`, step 1 of Algorithm 1) and top-down
poses (:mod:`.estimator`, step 4), each on the runtime the machine offers; int8 calibration crops
from the user's files (:mod:`.calibration`)."""
