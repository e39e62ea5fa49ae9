!> STAND-IN for the Python worker on OASIS3-MCT (pyoasis 5 is not available
!! here): a Fortran program that does what bridge/transport/oasis.py does with
!! the field table of bridge/fortran/examples/exchange_ocean.F90. Component
!! 'worker', peer 'ocean', so its OASIS names are WORKER_OCEAN_<FIELD>
!! (bridge.transport.naming.oasis_name). Each rank owns a box of a PX x PY split
!! (chosen unlike the ocean's, so MCT must reroute); at every step (t = step
!! seconds) it gets a2, b3 and checks every value, then puts c2, d3.
!! Usage: worker_standin NX NY NLEV PX PY NSTEPS
program worker_standin
   use mod_oasis
   use mpi
   use standin_fields
   implicit none
   integer :: nx, ny, nlev, px, py, nsteps, comp_id, comm, rank, ierr, part_id
   integer :: i0, j0, ni, nj, step, info, nbad, nrecv, k
   integer :: var(4), args(6)
   character(len=2), parameter :: fname(4) = ['A2', 'B3', 'C2', 'D3']
   real(dp), allocatable :: a(:, :, :), b(:, :, :)

   args = int_args(6)
   nx = args(1); ny = args(2); nlev = args(3); px = args(4); py = args(5); nsteps = args(6)
   if (nlev < 2) stop 'worker stand-in: NLEV must be >= 2 (b3 and d3 travel as OASIS bundles)'
   call oasis_init_comp(comp_id, 'worker', ierr)
   call oasis_get_localcomm(comm, ierr)
   call MPI_Comm_rank(comm, rank, ierr)
   call split(nx, px, mod(rank, px), i0, ni)
   call split(ny, py, rank/px, j0, nj)
   call oasis_def_partition(part_id, [2, j0*nx + i0, ni, nj, nx], ierr, nx*ny)
   do k = 1, 4
      call oasis_def_var(var(k), 'WORKER_OCEAN_'//fname(k), part_id, [1, merge(nlev, 1, mod(k, 2) == 0)], &
                         merge(OASIS_In, OASIS_Out, k <= 2), [1, ni*nj], OASIS_Real, ierr)
      if (var(k) < 0) print '(a)', 'worker stand-in: WORKER_OCEAN_'//fname(k)//' is not in the namcouple'
   end do
   call oasis_enddef(ierr)
   allocate (a(ni, nj, 1), b(ni, nj, nlev))
   nbad = 0
   nrecv = 0
   do step = 0, nsteps - 1
      a = -1
      b = -1
      call oasis_get(var(1), step, a(:, :, 1), info)
      nrecv = nrecv + merge(1, 0, info == OASIS_Recvd)
      call oasis_get(var(2), step, b, info)
      nrecv = nrecv + merge(1, 0, info == OASIS_Recvd)
      nbad = nbad + mismatches(a, 1, step, i0, j0) + mismatches(b, 2, step, i0, j0)
      call fill(a, 3, step, i0, j0)
      call fill(b, 4, step, i0, j0)
      call oasis_put(var(3), step, a(:, :, 1), info)
      call oasis_put(var(4), step, b, info)
   end do
   print '(a,i0,a,i0,a,i0,a,i0)', 'worker stand-in rank ', rank, ': receptions ', nrecv, ' of ', 2*nsteps, &
      ', wrong values ', nbad
   call oasis_terminate(ierr)

end program worker_standin
