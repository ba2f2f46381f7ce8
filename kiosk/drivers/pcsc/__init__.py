"""PC/SC contactless reader of library cards (pyscard over pcscd): card UIDs via FF CA 00 00 00."""
