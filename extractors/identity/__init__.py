"""Who is on screen: one face-identity descriptor per face track (:mod:`.embedding`, dlib's ResNet
descriptor, registered in :mod:`.model`) and an incremental clustering of tracks into identities
whose ids never change once given (:mod:`.clustering`, pure numpy). Measured in
``bench/identity.py``."""
