X='cli'
def main(): print("hi")
