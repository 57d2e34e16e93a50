error("init failed on purpose")
