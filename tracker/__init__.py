X='tracker'
