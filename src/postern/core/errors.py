class PosternError(Exception):
    """An error caused by user input (a file, a key, a value); the message says where and what to do.

    The CLI prints these without a traceback.
    """
