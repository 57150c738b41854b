X='methods'
