"""Find a book: pinyin keys, the title index the core loop keeps, and the screen's read-only finder.

Layout: ``pinyin`` (keys of a title or name) and ``phrases`` (the part of pypinyin's dictionary it needs),
``index`` (writes, on the core loop only), ``finder`` (reads, on the screen's own connection), ``results`` and
``classes`` (plain data the screen may import: no database in them).
"""
