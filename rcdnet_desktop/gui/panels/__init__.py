"""The panels around the image: the prediction, the evidence maps, the image list, the measurements,
the DICOM tags, the banner and notices.
"""
